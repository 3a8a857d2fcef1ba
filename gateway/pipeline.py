"""decode → normalize → outbox, for every datagram, whatever its source (live UDP or replay).

Runs on the gateway's asyncio loop. Nothing here blocks: records are buffered by the outbox
and committed by `commit()` (a group commit the service calls every `commit_window_ms`).
A datagram that cannot be decoded is counted by reason and dropped.
"""

from __future__ import annotations

import logging
from collections import Counter

from gateway.decode.f1 import decode_packet
from gateway.errors import MalformedPacket
from gateway.normalize.f1 import F1Normalizer
from gateway.outbox import Outbox
from gateway.records import Lap

log = logging.getLogger("pitbox.pipeline")


class Pipeline:
    def __init__(self, outbox: Outbox, *, rig_names: dict[str, str] | None = None,
                 sample_hz: float = 10.0) -> None:
        self.outbox = outbox
        self.rig_names = rig_names or {}
        self.sample_hz = sample_hz
        self.rigs: dict[str, F1Normalizer] = {}
        self.dropped: Counter[str] = Counter()
        self.records: Counter[str] = Counter()
        self.datagrams = 0
        self.own_laps = 0  # laps of the cars the rigs drive: what Teamtactics' lap docs hold

    def rig_for(self, src: str) -> str:
        """A rig is its source address; config may name it by "ip:port" or by "ip"."""
        ip = src.rsplit(":", 1)[0]
        return self.rig_names.get(src) or self.rig_names.get(ip) or ip

    def on_datagram(self, payload: bytes, src: str, ts_ns: int, mono_ns: int) -> None:
        self.datagrams += 1
        try:
            packet = decode_packet(payload)
        except MalformedPacket as exc:
            self.dropped[exc.reason] += 1
            return
        rig = self.rig_for(src)
        norm = self.rigs.get(rig)
        if norm is None:
            norm = self.rigs[rig] = F1Normalizer(rig, sample_hz=self.sample_hz)
            log.info("capture: new rig %s (from %s)", rig, src)
        records = norm.feed(packet, ts_ns=ts_ns, mono_ns=mono_ns)
        if records:
            self.outbox.append(records)
            self.records.update(r.KIND for r in records)
            self.own_laps += sum(1 for r in records if isinstance(r, Lap) and r.own_car)

    def commit(self) -> int:
        return self.outbox.flush()
