"""The F1 simulator's race: decodable, the right number of laps, one pit stop, deterministic."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from gateway.decode.f1 import F1Packet, decode_packet
from gateway.recorder import CaptureReader
from gateway.sim.f1 import SAMPLE_SRC, main, make_sample_capture, simulate_session

LAPS = 5


@pytest.fixture(scope="module")
def race() -> list[tuple[float, F1Packet]]:
    return [(t, decode_packet(d))
            for t, d in simulate_session(laps=LAPS, rate_hz=10, lap_time_s=20.0, seed=3)]


def player_laps(race: list[tuple[float, F1Packet]]) -> list[Any]:
    return [p.body.cars[p.header.player_car_idx] for _, p in race if p.header.packet_id == 2]


def test_every_datagram_decodes_with_a_consistent_clock(
        race: list[tuple[float, F1Packet]]) -> None:
    assert {p.header.packet_id for _, p in race} == {1, 2, 3, 6, 7}
    frames = [p.header.frame_id for _, p in race]
    assert frames == sorted(frames)
    assert all(p.header.session_time_s == pytest.approx(t, abs=1e-3) for t, p in race)
    events = [p.body.code for _, p in race if p.header.packet_id == 3]
    assert events[0] == "SSTA" and events[-1] == "SEND" and "FTLP" in events


def test_the_player_completes_exactly_the_race_laps(race: list[tuple[float, F1Packet]]) -> None:
    laps = player_laps(race)
    lap_nums = [c.current_lap_num for c in laps]
    increments = sum(1 for a, b in itertools.pairwise(lap_nums) if b == a + 1)
    assert increments == LAPS - 1 and laps[-1].result_status == 3  # the last lap finishes
    last_times = [c.last_lap_time_ms for c in laps]
    changes = [b for a, b in itertools.pairwise(last_times) if b != a]
    assert len(changes) == LAPS and all(15_000 < ms < 30_000 for ms in changes)


def test_exactly_one_pit_stop_changes_tyres_to_medium(race: list[tuple[float, F1Packet]]) -> None:
    laps = player_laps(race)
    stops = [c.num_pit_stops for c in laps]
    assert stops == sorted(stops) and stops[0] == 0 and stops[-1] == 1  # 0 → 1, once
    statuses = [c.pit_status for c in laps]
    runs = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    assert runs == [0, 1, 2, 1, 0]
    stopped = [t for (t, p) in race if p.header.packet_id == 2
               and p.body.cars[0].pit_status == 2]
    assert 2.5 <= stopped[-1] - stopped[0] <= 3.5
    status = [p.body.cars[0] for _, p in race if p.header.packet_id == 7]
    assert status[0].visual_tyre_compound == 16 and status[-1].visual_tyre_compound == 17
    assert status[-1].tyres_age_laps < status[0].tyres_age_laps + LAPS - 1
    fuel = [c.fuel_in_tank_kg for c in status]
    assert fuel == sorted(fuel, reverse=True) and 7 < fuel[0] - fuel[-1] < 9


def test_unused_slots_are_empty_and_speeds_are_realistic(
        race: list[tuple[float, F1Packet]]) -> None:
    lap = next(p.body for _, p in race if p.header.packet_id == 2)
    assert [c.result_status for c in lap.cars[:4]] == [2, 2, 2, 2]
    assert all(c.result_status == 0 for c in lap.cars[4:])
    speeds = [p.body.cars[0].speed_kph for _, p in race if p.header.packet_id == 6]
    assert max(speeds) < 380 and 0 in speeds


def test_the_simulator_is_deterministic_per_seed() -> None:
    a = list(simulate_session(laps=2, rate_hz=5, lap_time_s=10.0, seed=7))
    b = list(simulate_session(laps=2, rate_hz=5, lap_time_s=10.0, seed=7))
    c = list(simulate_session(laps=2, rate_hz=5, lap_time_s=10.0, seed=8))
    assert a == b and a != c


def test_the_sample_capture_replays_the_simulated_race(tmp_path: Path) -> None:
    path = tmp_path / "s.pbxcap"
    n = make_sample_capture(path, laps=4, rate_hz=2, lap_time_s=10.0)
    reader = CaptureReader(path)
    items = list(reader)
    assert len(items) == n and reader.skipped_bytes == 0
    assert {i.src for i in items} == {SAMPLE_SRC}
    assert [i.ts_ns for i in items] == sorted(i.ts_ns for i in items)
    for item in items:
        decode_packet(item.payload)


def test_the_shipped_sample_is_small_and_decodes() -> None:
    sample = Path(__file__).resolve().parents[2] / "gateway" / "sim" / "sample_session.pbxcap"
    assert sample.stat().st_size < 1_500_000
    for item in CaptureReader(sample):
        decode_packet(item.payload)


def test_cli_writes_a_capture(tmp_path: Path) -> None:
    out = tmp_path / "cli.pbxcap"
    assert main(["--out", str(out), "--laps", "4", "--rate", "2", "--lap-time", "10"]) == 0
    assert sum(1 for _ in CaptureReader(out)) > 0
