"""The box's service: capture → pipeline → outbox → uplink on one asyncio loop.

`Gateway.start()` binds the UDP socket and opens the outbox before anything else, so the box
captures even while the broker is unreachable or the clock is unsynced (the uplink then just
waits). This is what `pitbox gateway run` and systemd start. The outbox commit loop also
feeds systemd's watchdog, but only while the whole data path moves or is legitimately idle
(`gateway/status/watchdog.py` decides; a dead capture socket or a stuck pump starves it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from gateway.capture.f1_udp import F1Capture
from gateway.capture.irsdk_relay import IrsdkRelay
from gateway.config import Config, with_overrides
from gateway.errors import ConfigError, OutboxError, OutboxFullError
from gateway.forward import Forwarder, parse_target
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.status.health import Sample
from gateway.status.monitor import monitor_for
from gateway.status.sdnotify import notify, ping_interval_s
from gateway.status.watchdog import Commit, Progress, Watchdog
from gateway.uplink import auth
from gateway.uplink.setup import build_uplink

log = logging.getLogger("pitbox.gateway")
COMMIT_REPORT_EVERY_S = 60.0  # a failing disk is said once a minute, not 25 times a second
COMMIT_SEVERITY: dict[Commit, int] = {"ok": 0, "disk_full": 1, "io_error": 2, "bug": 3}


def _read_key(cfg: Config) -> bytes:
    # Under systemd the key arrives through LoadCredential=device_key:…: read that copy.
    cred = Path(os.environ.get("CREDENTIALS_DIRECTORY", "/nonexistent")) / "device_key"
    path = cred if cred.is_file() else Path(cfg.device.key_path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{cfg.source}: device.key_path: cannot read {str(path)!r}: "
                          f"{exc.strerror} (make one with `pitbox provision`)") from exc


def _with_provisioned_id(cfg: Config) -> Config:
    """Under systemd the id `pitbox provision` made arrives as LoadCredential=device_id:…"""
    cred = Path(os.environ.get("CREDENTIALS_DIRECTORY", "/nonexistent")) / "device_id"
    if not cred.is_file():
        return cfg
    return with_overrides(cfg, device={"id": cred.read_text().strip()})


def _forward_targets(cfg: Config) -> list[tuple[str, int]]:
    targets = []
    for i, text in enumerate(cfg.capture.forward):
        try:
            targets.append(parse_target(text))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{cfg.source}: capture.forward[{i}]: {exc}") from exc
    return targets


def _relay_for(cfg: Config, pipeline: Pipeline) -> IrsdkRelay | None:
    """The iRacing shims' TCP receiver, when `[relay] enabled`; it needs a real pairing key."""
    if not cfg.relay.enabled:
        return None
    if len(cfg.relay.pairing_key) < 16:
        raise ConfigError(f"{cfg.source}: relay.pairing_key must be at least 16 characters "
                          "(the shims' HMAC key; e.g. `python3 -c 'import secrets; "
                          "print(secrets.token_urlsafe(24))'`)")
    # Beside the outbox: the box's one writable state folder.
    marks = Path(cfg.outbox.path).with_name("relay-marks.json")
    return IrsdkRelay(pipeline.on_irsdk_frame, key=cfg.relay.pairing_key.encode(),
                      host=cfg.relay.bind, port=cfg.relay.port, marks_path=marks)


class Gateway:
    def __init__(self, cfg: Config, *, live: bool = True,
                 wall_clock: Callable[[], float] = time.time,
                 synced: Callable[[], bool] = auth.timesync_synchronized) -> None:
        """`live=False` binds no socket: the pipeline is fed by a replay instead.
        `wall_clock`/`synced` decide when the uplink may mint a token (tests inject them)."""
        cfg = self.cfg = _with_provisioned_id(cfg)
        self.live = live
        budget_mb = cfg.outbox.budget_mb
        self.outbox = Outbox(cfg.outbox.path,
                             budget_bytes=int(budget_mb * 2**20) if budget_mb > 0 else None,
                             min_free_bytes=int(cfg.outbox.min_free_mb * 2**20))
        self.pipeline = Pipeline(self.outbox, rig_names=cfg.capture.rig_names,
                                 sample_hz=cfg.normalize.sample_hz,
                                 idle_after_s=cfg.capture.idle_after_s, historical=not live)
        self.forwarder = Forwarder(_forward_targets(cfg)) if cfg.capture.forward else None
        self.capture = F1Capture(self.pipeline.on_datagram, host=cfg.capture.f1_bind,
                                 port=cfg.capture.f1_port, extra_ports=cfg.capture.f1_extra_ports,
                                 forward=self.forwarder)
        self.relay = _relay_for(cfg, self.pipeline)
        key_pem = _read_key(cfg)
        self.publisher, self.pump = build_uplink(
            cfg, key_pem, self.outbox, wall_clock=wall_clock, synced=synced,
            extra_state=self._uplink_state)
        self.ready = False
        self._wall_clock, self._synced = wall_clock, synced
        self.status = monitor_for(cfg, self._health_sample)  # LEDs + health file
        self.watchdog = Watchdog()
        self._starving = ""  # why WATCHDOG=1 is withheld; "" while it is sent
        self._pump_turns = 0  # Pump.turns at the previous watchdog check
        # Since when (monotonic s) outbox commits fail, of whatever kind, or None while they
        # work: the log lines' one clock of the episode. The watchdog keeps its own per kind.
        self.commit_failing_since: float | None = None
        self._commit_bug = False  # a bug of ours in this episode: rows may be lost
        self._commit_reported_s = -COMMIT_REPORT_EVERY_S  # a failing disk: said at once
        self._tasks: list[asyncio.Task[None]] = []

    def _uplink_state(self) -> dict[str, object]:
        """What the box reports in its state message beyond the outbox: traffic, what was
        dropped, and which rigs are sending, so a fleet owner sees a rig sending garbage, a rig
        gone quiet, or a shim with the wrong key."""
        state: dict[str, object] = {"datagrams": self.pipeline.datagrams,
                                    "dropped": dict(self.pipeline.dropped),
                                    "rigs": self._rig_states()}
        if self.relay is not None:
            state["shim_frames"] = self.pipeline.irsdk_frames
            state["shim_refused"] = dict(self.relay.refused)
            state["shims"] = self._shim_states()
        return state

    @property
    def commit_failed(self) -> bool:
        """Whether the latest outbox commit failed (the alarm LED)."""
        return self.commit_failing_since is not None

    def _rig_states(self) -> dict[str, str]:
        """Every F1 rig heard since start: "active", or "idle" once it has sent nothing for
        `capture.idle_after_s` (the pipeline's sweep marks it; its next datagram wakes it)."""
        return {rig.name: "idle" if rig.idle else "active"
                for rig in self.pipeline.directory.rigs.values() if rig.datagrams}

    def _shim_states(self) -> dict[str, str]:
        """The same for iRacing shims, by shim id, from the last-frame time `IRacingBox` keeps
        for its source handover. Not through `RigDirectory`: it names UDP sources (config
        names, ip and port rules; a shim id, already a name, may hold a ':' its ip rule would
        cut), and a second copy of that time would be the duplicate."""
        now_s, idle_s = time.monotonic(), self.pipeline.directory.idle_after_ns / 1e9
        return {shim: "idle" if now_s - view.last_s >= idle_s else "active"
                for shim, view in self.pipeline.iracing.shims.items()}

    def _health_sample(self) -> Sample:
        budget = self.outbox.budget_bytes
        return Sample(mono_s=time.monotonic(), ready=self.ready,
                      datagrams=self.pipeline.datagrams + self.pipeline.irsdk_frames,
                      uplink_connected=self.publisher.connected.is_set(),
                      outbox_pending=self.outbox.pending(),
                      clock_sane=auth.clock_is_sane(self._wall_clock(), synced_flag=self._synced()),
                      commit_failed=self.commit_failed,
                      outbox_fill=self.outbox.used_bytes() / budget if budget else None)

    async def start(self) -> None:
        status = asyncio.create_task(self.status.run(), name="status")  # LEDs blink "booting"
        if self.live:
            await self.capture.start()
            if self.relay is not None:
                await self.relay.start()
        self.publisher.connect()
        self._tasks = [asyncio.create_task(self._commit_loop(), name="commit"),
                       asyncio.create_task(self._uplink_loop(), name="uplink"),
                       asyncio.create_task(self._idle_loop(), name="rigs"), status]
        self.ready = True
        notify("READY=1")  # the socket is bound and the outbox is open

    async def _commit_loop(self) -> None:
        window_s = self.cfg.outbox.commit_window_ms / 1000
        check_every_s = ping_interval_s()
        next_check = 0.0
        worst: Commit = "ok"  # since the last watchdog check
        while True:
            await asyncio.sleep(window_s)
            worst = max(worst, self._commit(), key=COMMIT_SEVERITY.__getitem__)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + check_every_s
                try:
                    self._feed_watchdog(worst, now)
                except Exception:  # a bug of ours: no ping (systemd restarts), commits go on
                    log.exception("watchdog: the check failed")
                worst = "ok"

    def _commit(self) -> Commit:
        """One group commit, and how it went. The log lines time the whole failure episode,
        from the first failed commit to the first good one, whatever the kind (a full disk
        that turns into an I/O error is one episode); the watchdog times each kind apart, for
        its grace."""
        try:
            if self.pipeline.commit():
                self.pump.wakeup.set()
        except OutboxError as exc:
            # The disk: full or failing. The alarm LED and a line a minute say so; whether
            # a restart could help is the watchdog's call (gateway/status/watchdog.py).
            now, since = self._commit_failed_at()
            if now - self._commit_reported_s >= COMMIT_REPORT_EVERY_S:
                self._commit_reported_s = now
                failing = f"failing for {now - since:.0f} s; " if now > since else ""
                log.error("%s (%scapture goes on)", exc, failing)
            return "disk_full" if isinstance(exc, OutboxFullError) else "io_error"
        except Exception:  # a bug of ours: log it; the watchdog starves and systemd restarts
            self._commit_failed_at()
            self._commit_bug = True
            log.exception("outbox commit failed")
            return "bug"
        if self.commit_failing_since is not None:
            kept = "" if self._commit_bug else "; nothing was lost"
            log.info("outbox commits work again after %.0f s%s",
                     time.monotonic() - self.commit_failing_since, kept)
            self.commit_failing_since, self._commit_bug = None, False
        return "ok"

    def _commit_failed_at(self) -> tuple[float, float]:
        """A commit failed just now: (now, since when commits have been failing), in
        monotonic s; the first failure of an episode starts it."""
        now = time.monotonic()
        if self.commit_failing_since is None:
            self.commit_failing_since = now
        return now, self.commit_failing_since

    def _feed_watchdog(self, commit: Commit, now: float) -> None:
        """WATCHDOG=1 only while the whole path shows progress or is legitimately idle."""
        why = self.watchdog.check(Progress(
            mono_s=now, capture_open=self._capture_open(),
            dead_tasks=tuple(t.get_name() for t in self._tasks if t.done()), commit=commit,
            uplink_connected=self.publisher.connected.is_set(), uplink_turned=self._pump_turned()))
        if why != self._starving:
            if why:
                log.error("watchdog: not telling systemd we are alive: %s (it restarts the "
                          "gateway after WatchdogSec)", why)
                notify(f"STATUS=watchdog starving: {why}")
            else:
                log.info("watchdog: the data path moves again")
            self._starving = why
        if not why:
            notify("WATCHDOG=1")

    def _capture_open(self) -> bool:
        if not self.live:  # a replay feeds the pipeline: no sockets to watch
            return True
        return self.capture.alive() and (self.relay is None or self.relay.alive())

    def _pump_turned(self) -> bool:
        """Whether the pump's loop turned since the last look (a read: an idle pump turns every
        0.2 s by itself; one blocked on its in-flight sends does not)."""
        turns = self.pump.turns
        turned = turns != self._pump_turns
        self._pump_turns = turns
        return turned

    async def _uplink_loop(self) -> None:
        """The pump, restarted if a bug of ours ends it: its claimed rows go back to the
        outbox and it starts again a second later, so the uplink never dies silently."""
        while True:
            try:
                await self.pump.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("uplink: the pump stopped; restarting it in 1 s")
                self.pump.release_held()
                await asyncio.sleep(1.0)

    async def _idle_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.pipeline.sweep_idle(time.monotonic_ns())

    async def stop(self, *, drain_s: float = 0.0) -> bool:
        """Stop capture; optionally wait `drain_s` for the outbox to empty. True if it did."""
        notify("STOPPING=1")
        self.capture.close()
        if self.relay is not None:
            self.relay.close()
        if self.forwarder is not None:
            self.forwarder.close()
        drained = await self.pump.drain(drain_s) if drain_s > 0 else self.outbox.pending() == 0
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.publisher.close()
        self.status.panel.close()
        self.outbox.close()
        return drained

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()
        await self.stop()
