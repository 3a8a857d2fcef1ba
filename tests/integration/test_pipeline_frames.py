"""The capture path decodes only the frames the normalizer wants (20 Hz of a 60 Hz stream):
the laps, pit events and stints in the outbox must be those of feeding every frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.decode.f1 import decode_packet
from gateway.normalize.f1 import USED_PACKET_IDS, F1Normalizer
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.records import Event, Lap, Record, Sample
from gateway.sim.f1 import rig_src, simulate_rigs


def test_decoding_only_wanted_frames_loses_no_lap_pit_event_or_stint(tmp_path: Path) -> None:
    stream = list(simulate_rigs(1, 2025, laps=3, hz=60, lap_time_s=12, num_cars=6))
    every: list[Record] = []
    full = F1Normalizer(rig_src(0).rsplit(":", 1)[0])
    for ts, _src, payload in stream:
        packet = decode_packet(payload)
        if packet.header.packet_id in USED_PACKET_IDS:
            every += full.feed(packet, ts_ns=ts, mono_ns=ts)
    box = Outbox(tmp_path / "outbox.sqlite")
    pipeline = Pipeline(box)
    for ts, src, payload in stream:
        pipeline.on_datagram(payload, src, ts, ts)
    pipeline.commit()
    rows = box.claim(100_000)
    box.close()
    lean = [r.to_dict() | {"kind": r.kind} for r in rows]
    lean.sort(key=lambda d: d["ts_ns"])

    def laps_of(recs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((d["car_idx"], d["lap_no"], d["lap_time_ms"], tuple(d["sector_ms"]),
                       d["valid"], d["stint"], d["lap_in_stint"], d["pit_in"], d["pit_out"],
                       d["tyre_compound"]) for d in recs if d["kind"] == "lap")

    want = [r.to_dict() | {"kind": r.KIND} for r in every]
    assert len(laps_of(want)) == 6 * 3
    assert laps_of(lean) == laps_of(want)
    pits = sorted((d["car_idx"], d["code"]) for d in lean if d["kind"] == "event")
    assert pits == sorted((r.car_idx, r.code) for r in every if isinstance(r, Event))
    assert sum(1 for _, code in pits if code == "pit_exit") == 6
    times = {(r.car_idx, r.code): r.session_time_s for r in every if isinstance(r, Event)}
    for d in lean:
        if d["kind"] == "event" and d["code"].startswith("pit_"):
            assert abs(d["session_time_s"] - times[d["car_idx"], d["code"]]) <= 0.051
    fuel = {(r.car_idx, r.lap_no): r.fuel_used for r in every if isinstance(r, Lap)}
    for d in lean:
        if d["kind"] == "lap" and fuel[d["car_idx"], d["lap_no"]] is not None:
            assert d["fuel_used"] == pytest.approx(fuel[d["car_idx"], d["lap_no"]], abs=0.05)
    samples = sum(1 for r in every if isinstance(r, Sample))
    assert sum(1 for d in lean if d["kind"] == "sample") >= 0.97 * samples
    assert pipeline.datagrams == len(stream) and not pipeline.dropped
