"""`pitbox f1 dump FILE --json` on every file of ../shared/data/f1: one strict-JSON object per
datagram, EA's header fields in snake_case first, then the packet name and the body."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.decode.f1.header import Header
from pitbox.cli import main

F1_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "f1"
BAD_LENGTH = {"2024-03-RDFL.bin", "2024-03-SCAR.bin"}  # hand-edited upstream: 44 and 47 bytes
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def shared_files() -> list[Path]:
    return sorted(p for p in F1_DATA.rglob("*") if p.suffix in (".bin", ".json")) \
        if F1_DATA.is_dir() else []


def snake_keys(value: object) -> bool:
    if isinstance(value, dict):
        return all(SNAKE.fullmatch(k) and snake_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(snake_keys(v) for v in value)
    return True


@pytest.mark.shared
@pytest.mark.skipif(not shared_files(), reason="../shared/data/f1 not present: dump of the "
                    "real files skipped")
@pytest.mark.parametrize("path", shared_files(), ids=lambda p: p.name)
def test_dump_json_prints_one_object_per_datagram_header_first(
        path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["f1", "dump", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    objects = [json.loads(line) for line in out.splitlines()]
    expected = sum(1 for line in path.read_text().splitlines() if line.strip()) \
        if path.suffix == ".json" else 1
    assert len(objects) == expected and f"f1 dump: {expected} datagrams" in err
    if path.name in BAD_LENGTH:
        assert objects == [{"malformed": "bad_length", "size": path.stat().st_size}]
        return
    assert "malformed: none" in err
    for obj in objects:
        assert list(obj) == ["header", "packet", "body"]
        assert list(obj["header"]) == list(Header._fields)
        assert snake_keys(obj)
    if path.suffix == ".bin":
        header = objects[0]["header"]
        assert (header["packet_format"], header["packet_id"]) == (int(path.name[:4]),
                                                                  int(path.name[5:7]))


def test_dump_of_a_simulated_multi_rig_capture_names_every_packet(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.sim.f1 import main as sim_main

    capture = tmp_path / "rigs.pbxcap"
    assert sim_main(["--out", str(capture), "--rigs", "2", "--format", "2026", "--laps", "1",
                     "--lap-time", "3", "--rate", "20", "--cars", "4"]) == 0
    capsys.readouterr()
    assert main(["f1", "dump", str(capture)]) == 0
    out, err = capsys.readouterr()
    assert "malformed: none" in err
    names = {line.split()[2] for line in out.splitlines()}
    assert {"motion", "session", "lap_data", "event", "participants", "car_setups",
            "car_telemetry", "car_status", "final_classification", "car_damage",
            "session_history", "tyre_sets", "motion_ex", "lap_positions",
            "car_telemetry_2"} <= names


@pytest.mark.parametrize(("fmt", "count"), [(2023, 28), (2024, 52), (2025, 52), (2026, 52)])
def test_dump_json_names_the_session_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: int, count: int) -> None:
    from gateway.decode.f1.packet_01_session import SETTINGS_FIELDS
    from gateway.sim.f1 import write_rigs_capture

    capture = tmp_path / "rig.pbxcap"
    write_rigs_capture(capture, 1, fmt, laps=1, hz=5, lap_time_s=2, num_cars=4)
    assert main(["f1", "dump", str(capture), "--json"]) == 0
    out, _ = capsys.readouterr()
    sessions = [o for o in map(json.loads, out.splitlines()) if o.get("packet") == "session"]
    settings = sessions[0]["body"]["settings"]
    assert list(settings) == list(SETTINGS_FIELDS[:count])  # EA's order, by name
    assert (settings["ai_difficulty"], settings["game_mode"]) == (90, 3)  # the simulator's


def test_dump_says_when_a_capture_has_a_torn_tail(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    from gateway.sim.f1 import write_rigs_capture

    capture = tmp_path / "cut.pbxcap"
    n = write_rigs_capture(capture, 1, 2025, laps=1, hz=5, lap_time_s=2, num_cars=4)
    capture.write_bytes(capture.read_bytes()[:-10])  # a pulled plug: the last record torn
    with caplog.at_level("WARNING"):
        assert main(["f1", "dump", str(capture)]) == 0
    _, err = capsys.readouterr()
    assert f"f1 dump: {n - 1} datagrams" in err
    (line,) = [r.getMessage() for r in caplog.records if "torn tail" in r.getMessage()]
    assert line.startswith(f"f1 dump: {capture}: torn tail: ") and f"record {n - 1}" in line
