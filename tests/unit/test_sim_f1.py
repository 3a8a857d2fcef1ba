"""The F1 simulator: the single-rig race (decodable, the right number of laps, one pit stop,
deterministic, the shipped sample reproducible) and many rigs in every format."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.decode.f1 import F1Packet, decode_packet
from gateway.decode.f1.packet_01_session import session_type_name
from gateway.recorder import CaptureReader
from gateway.sim.f1 import (
    SAMPLE_SRC,
    main,
    make_sample_capture,
    rig_src,
    simulate_rigs,
    simulate_session,
)

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


def test_make_sample_reproduces_the_shipped_sample_byte_for_byte(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "gateway" / "sim" / "sample_session.pbxcap"
    out = tmp_path / "sample.pbxcap"
    assert main(["--out", str(out)]) == 0  # what `make sample` runs
    assert out.read_bytes() == shipped.read_bytes()


# -- many rigs -------------------------------------------------------------------------------

RIG_LAPS, RIG_CARS = 2, 6
EXPECTED_IDS = {2023: set(range(14)) - {9}, 2024: set(range(14)) - {9},
                2025: set(range(16)) - {9, 14}, 2026: set(range(17)) - {9, 14}}
"""Every packet of a race (no lobby, no time trial), per format."""


@pytest.fixture(scope="module", params=[2023, 2024, 2025, 2026])
def rigs(request: pytest.FixtureRequest) -> tuple[int, list[tuple[int, str, F1Packet]]]:
    fmt = request.param
    stream = simulate_rigs(2, fmt, RIG_LAPS, 60, lap_time_s=6.0, num_cars=RIG_CARS, seed=4)
    return fmt, [(ts, src, decode_packet(d)) for ts, src, d in stream]


def test_rigs_send_every_packet_type_of_their_format_from_their_own_port(
        rigs: tuple[int, list[tuple[int, str, F1Packet]]]) -> None:
    fmt, items = rigs
    assert [ts for ts, _, _ in items] == sorted(ts for ts, _, _ in items)
    assert {src for _, src, _ in items} == {rig_src(0), rig_src(1)}
    assert len({src.rsplit(":", 1)[1] for _, src, _ in items}) == 2
    for rig in (rig_src(0), rig_src(1)):
        mine = [p for _, src, p in items if src == rig]
        assert {p.header.packet_format for p in mine} == {fmt}
        assert {p.header.packet_id for p in mine} == EXPECTED_IDS[fmt]
        assert len({p.header.session_uid for p in mine}) == 1
    session = next(p for _, _, p in items if p.header.packet_id == 1)
    assert session_type_name(fmt, session.body.session_type) == "race"
    uids = {p.header.session_uid for _, _, p in items}
    assert len(uids) == 2  # two games, two sessions


def test_rigs_send_each_packet_at_its_real_rate(
        rigs: tuple[int, list[tuple[int, str, F1Packet]]]) -> None:
    fmt, items = rigs
    mine = [(ts, p) for ts, src, p in items if src == rig_src(0)]
    seconds = (mine[-1][0] - mine[0][0]) / 1e9
    counts = Counter(p.header.packet_id for _, p in mine)
    expected = {0: 60, 2: 60, 6: 60, 7: 60, 13: 60, 1: 2, 5: 2, 10: 10, 11: 20, 12: 20}
    if fmt >= 2025:
        expected[15] = 1
    if fmt >= 2026:
        expected[16] = 60
    for packet_id, hz in expected.items():
        assert counts[packet_id] / seconds == pytest.approx(hz, rel=0.1), packet_id
    assert 1 <= counts[4] <= seconds / 5 + 1  # participants every 5 s
    total = sum(counts.values()) / seconds
    assert total == pytest.approx(416 if fmt >= 2026 else 356, rel=0.05)


def test_every_car_of_every_rig_completes_the_race_with_one_pit_stop(
        rigs: tuple[int, list[tuple[int, str, F1Packet]]]) -> None:
    fmt, items = rigs
    for rig in (rig_src(0), rig_src(1)):
        laps = [p.body for _, src, p in items if src == rig and p.header.packet_id == 2]
        assert len(laps[-1].cars) == (24 if fmt >= 2026 else 22)
        active = laps[-1].cars[:RIG_CARS]
        assert all(c.result_status == 3 and c.num_pit_stops == 1 for c in active)
        assert all(c.result_status == 0 for c in laps[-1].cars[RIG_CARS:])
        for idx in range(RIG_CARS):
            statuses = [lap.cars[idx].pit_status for lap in laps]
            runs = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
            assert runs == [0, 1, 2, 1, 0], idx
        final = next(p.body for _, src, p in items if src == rig and p.header.packet_id == 8)
        assert final.num_cars == RIG_CARS
        assert sorted(c.position for c in final.cars[:RIG_CARS]) == list(range(1, RIG_CARS + 1))
        assert all(c.num_laps == RIG_LAPS and c.num_tyre_stints == 2 for c in final.cars[:6])
        history = [p.body for _, src, p in items if src == rig and p.header.packet_id == 11]
        assert {h.car_idx for h in history} == set(range(RIG_CARS))  # cycles through the cars
        last = {h.car_idx: h for h in history}
        assert all(last[i].laps[0].lap_time_ms > 0 for i in range(RIG_CARS))


def test_simulate_rigs_is_deterministic_and_checks_its_arguments() -> None:
    a = list(itertools.islice(simulate_rigs(2, 2024, 1, 20, lap_time_s=5.0, num_cars=4), 500))
    b = list(itertools.islice(simulate_rigs(2, 2024, 1, 20, lap_time_s=5.0, num_cars=4), 500))
    assert a == b
    with pytest.raises(ValueError):
        next(iter(simulate_rigs(1, 2022)))
    with pytest.raises(ValueError):
        next(iter(simulate_rigs(1, 2025, num_cars=24)))  # 22 cars before 2026


def test_cli_writes_a_multi_rig_capture(tmp_path: Path) -> None:
    out = tmp_path / "rigs.pbxcap"
    assert main(["--out", str(out), "--rigs", "3", "--format", "2026", "--laps", "1",
                 "--lap-time", "4", "--rate", "10", "--cars", "24"]) == 0
    items = list(CaptureReader(out))
    assert {i.src for i in items} == {rig_src(r) for r in range(3)}
    last_laps = [decode_packet(i.payload).body for i in items if i.payload[6] == 2][-1]
    assert sum(c.result_status == 3 for c in last_laps.cars) == 24  # a full 2026 grid
    assert {decode_packet(i.payload).header.packet_format for i in items} == {2026}
