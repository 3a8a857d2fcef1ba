"""decode → normalize → outbox, for every datagram, whatever its source (live UDP or replay).

Runs on the gateway's asyncio loop. Nothing here blocks: records are buffered by the outbox
and committed by `commit()` (a group commit the service calls every `commit_window_ms`).
A datagram that cannot be decoded is counted by reason and dropped. So is one that decodes
but that the normalizer cannot take (a NaN where a time should be, a bug of ours): counted as
`normalize_error`, logged with its traceback at most once a minute, and capture carries on.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from gateway.decode.f1 import F1Packet, check_header, decode_packet
from gateway.errors import MalformedPacket
from gateway.normalize.f1 import F1Normalizer
from gateway.normalize.iracing_box import IRacingBox
from gateway.outbox import Outbox
from gateway.records import Lap
from gateway.rigs import RigDirectory

log = logging.getLogger("pitbox.pipeline")
ERROR_LOG_EVERY_S = 60.0
LAP_DATA = 2
FLUSH_HELD_ON = frozenset({3, 8})  # an event (chequered flag, session end), final classification


class Pipeline:
    def __init__(self, outbox: Outbox, *, rig_names: dict[str, str] | None = None,
                 sample_hz: float = 10.0, idle_after_s: float = 10.0,
                 historical: bool = False) -> None:
        self.outbox = outbox
        self.directory = RigDirectory(rig_names, idle_after_s=idle_after_s)
        self.sample_hz = sample_hz
        self.historical = historical  # a replay: its sessions are marked as such
        self.rigs: dict[str, F1Normalizer] = {}
        self.dropped: Counter[str] = Counter()
        self.records: Counter[str] = Counter()
        self.datagrams = 0
        self._held_lap: dict[str, bytes] = {}  # per rig: the newest Lap Data `wants` skipped
        self.own_laps = 0  # laps of the cars the rigs drive: what Teamtactics' lap docs hold
        self.iracing = IRacingBox()  # every iRacing shim's view, merged per team car
        self.irsdk_frames = 0  # authenticated shim frames (the relay counts the refused ones)
        self._error_logged_ns: int | None = None

    def on_datagram(self, payload: bytes, src: str, ts_ns: int, mono_ns: int,
                    listen_port: int = 0) -> None:
        self.datagrams += 1
        try:
            header = check_header(payload)
        except MalformedPacket as exc:
            self.dropped[exc.reason] += 1
            return
        rig, woke = self.directory.rig_for(src, mono_ns, listen_port)
        norm = self.rigs.get(rig.name)
        if norm is None:
            norm = self.rigs[rig.name] = F1Normalizer(rig.name, sample_hz=self.sample_hz,
                                                      historical=self.historical)
            log.info("capture: new rig %s (from %s)", rig.name, src)
        elif woke:
            log.info("capture: rig %s is sending again (from %s)", rig.name, src)
        if header.packet_id in FLUSH_HELD_ON and rig.name in self._held_lap:
            # The race is ending: the last Lap Data we skipped may hold the flag lap.
            self._feed(norm, decode_packet(self._held_lap.pop(rig.name)), ts_ns, mono_ns)
        if not norm.wants(header):  # length checked; a body nobody reads is not decoded
            if header.packet_id == LAP_DATA:
                self._held_lap[rig.name] = payload
            return
        if header.packet_id == LAP_DATA:
            self._held_lap.pop(rig.name, None)
        try:
            packet = decode_packet(payload)
        except MalformedPacket as exc:  # e.g. an unknown event code
            self.dropped[exc.reason] += 1
            return
        self._feed(norm, packet, ts_ns, mono_ns)

    def _feed(self, norm: F1Normalizer, packet: F1Packet, ts_ns: int, mono_ns: int) -> None:
        try:
            records = norm.feed(packet, ts_ns=ts_ns, mono_ns=mono_ns)
        except Exception:  # noqa: BLE001 - the capture path's last line: one bad packet never stops a rig
            self._normalize_error(f"F1 packet {packet.header.packet_id} from rig {norm.rig}",
                                  mono_ns)
            return
        if records:
            self.outbox.append(records)
            self.records.update(r.KIND for r in records)
            self.own_laps += sum(1 for r in records if isinstance(r, Lap) and r.own_car)

    def sweep_idle(self, mono_ns: int) -> list[str]:
        """Rigs that just went quiet (logged, not an error); call now and then."""
        names = [rig.name for rig in self.directory.sweep(mono_ns)]
        for name in names:
            log.info("capture: rig %s idle (nothing for %.0f s)", name,
                     self.directory.idle_after_ns / 1e9)
        return names

    def on_irsdk_frame(self, shim: str, kind: str, data: dict[str, Any], ts_ns: int,
                       mono_ns: int) -> None:
        """One authenticated iRacing shim frame (from the relay): merge, normalize, buffer."""
        self.irsdk_frames += 1
        try:
            records = self.iracing.on_frame(shim, kind, data, now_s=mono_ns / 1e9, ts_ns=ts_ns,
                                            mono_ns=mono_ns)
        except MalformedPacket as exc:
            self.dropped[f"irsdk_{exc.reason}"] += 1
            return
        except Exception:  # noqa: BLE001 - as for F1: counted, logged now and then
            self._normalize_error(f"iRacing {kind} frame from shim {shim}", mono_ns)
            return
        if records:
            self.outbox.append(records)
            self.records.update(r.KIND for r in records)
            self.own_laps += sum(1 for r in records if isinstance(r, Lap) and r.own_car)

    def _normalize_error(self, what: str, mono_ns: int) -> None:
        self.dropped["normalize_error"] += 1
        last = self._error_logged_ns
        if last is None or mono_ns - last >= ERROR_LOG_EVERY_S * 1e9:
            self._error_logged_ns = mono_ns
            log.exception("normalize: dropped %s (%d dropped so far; next report in a minute at "
                          "the earliest)", what, self.dropped["normalize_error"])

    def commit(self) -> int:
        return self.outbox.flush()
