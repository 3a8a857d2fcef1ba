"""The box's service: capture → pipeline → outbox → uplink on one asyncio loop.

`Gateway.start()` binds the UDP socket and opens the outbox before anything else, so the box
captures even while the broker is unreachable or the clock is unsynced (the uplink then just
waits). This is what `pitbox gateway run` and systemd start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from gateway.capture.f1_udp import F1Capture
from gateway.config import Config
from gateway.errors import ConfigError
from gateway.forward import Forwarder, parse_target
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.status.sdnotify import notify
from gateway.uplink import auth
from gateway.uplink.mqtt import MqttPublisher
from gateway.uplink.pump import Pump

log = logging.getLogger("pitbox.gateway")


def _read_key(cfg: Config) -> bytes:
    try:
        return Path(cfg.device.key_path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{cfg.source}: device.key_path: cannot read {cfg.device.key_path!r}: "
                          f"{exc.strerror} (make one with `pitbox provision`)") from exc


def _forward_targets(cfg: Config) -> list[tuple[str, int]]:
    targets = []
    for i, text in enumerate(cfg.capture.forward):
        try:
            targets.append(parse_target(text))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{cfg.source}: capture.forward[{i}]: {exc}") from exc
    return targets


class Gateway:
    def __init__(self, cfg: Config, *, live: bool = True) -> None:
        """`live=False` binds no socket: the pipeline is fed by a replay instead."""
        self.cfg = cfg
        self.live = live
        self.outbox = Outbox(cfg.outbox.path)
        self.pipeline = Pipeline(self.outbox, rig_names=cfg.capture.rig_names,
                                 sample_hz=cfg.normalize.sample_hz,
                                 idle_after_s=cfg.capture.idle_after_s, historical=not live)
        self.forwarder = Forwarder(_forward_targets(cfg)) if cfg.capture.forward else None
        self.capture = F1Capture(self.pipeline.on_datagram, host=cfg.capture.f1_bind,
                                 port=cfg.capture.f1_port, extra_ports=cfg.capture.f1_extra_ports,
                                 forward=self.forwarder)
        key_pem = _read_key(cfg)
        dev = cfg.device
        self.publisher = MqttPublisher(
            host=cfg.uplink.host, port=cfg.uplink.port,
            client_id=auth.client_id(dev.project, dev.region, dev.registry, dev.id),
            token=lambda: auth.mint(key_pem, time.time(), dev.project, cfg.uplink.jwt_minutes * 60),
            inflight=cfg.uplink.inflight, tls=cfg.uplink.tls, ca_file=cfg.uplink.ca_file)
        self.pump = Pump(self.outbox, self.publisher, device=dev.id, prefix=cfg.uplink.prefix,
                         wall_ns=time.time_ns, inflight=cfg.uplink.inflight,
                         batch_records=cfg.uplink.batch_records)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.live:
            await self.capture.start()
        self.publisher.connect()
        self._tasks = [asyncio.create_task(self._commit_loop(), name="commit"),
                       asyncio.create_task(self.pump.run(), name="uplink"),
                       asyncio.create_task(self._idle_loop(), name="rigs")]
        notify("READY=1")  # the socket is bound and the outbox is open

    async def _commit_loop(self) -> None:
        window_s = self.cfg.outbox.commit_window_ms / 1000
        while True:
            await asyncio.sleep(window_s)
            try:
                if self.pipeline.commit():
                    self.pump.wakeup.set()
            except Exception:  # a task's top level: log, count, carry on
                log.exception("outbox commit failed; records stay buffered in memory")
            else:
                # Fed by the commit loop itself: a stuck loop or a failing disk starves it.
                notify("WATCHDOG=1")

    async def _idle_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.pipeline.sweep_idle(time.monotonic_ns())

    async def stop(self, *, drain_s: float = 0.0) -> bool:
        """Stop capture; optionally wait `drain_s` for the outbox to empty. True if it did."""
        notify("STOPPING=1")
        self.capture.close()
        if self.forwarder is not None:
            self.forwarder.close()
        drained = await self.pump.drain(drain_s) if drain_s > 0 else self.outbox.pending() == 0
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.publisher.close()
        self.outbox.close()
        return drained

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()
        await self.stop()
