"""`pitbox iracing ingest`: .ibt files through the same normalize / stint logic as live data."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from pitbox.cli import main
from tests.irsdk_writer import default_values, session_yaml, write_ibt

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "iracing"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"real iRacing files not found at {SHARED}")


def ingest_json(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["iracing", "ingest", str(path), "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@needs_shared
@pytest.mark.shared
def test_ingest_of_amg_ibt_reports_the_pit_exit_it_contains(capsys: pytest.CaptureFixture[str]):
    out = ingest_json(SHARED / "amg.ibt", capsys)
    exits = [e for e in out if e["kind"] == "event" and e["code"] == "pit_exit"]
    assert len(exits) == 1, out
    (exit_,) = exits
    # The session starts in the pit box: leaving it is an exit, not a stop, and no new stint.
    assert exit_["detail"]["from_pit_box"] is True
    assert 54.0 < exit_["session_time_s"] < 110.0 and exit_["detail"]["time_of_day_s"] > 43254
    assert not [e for e in out if e.get("code") in ("pit_stop", "pit_entry")]
    assert exit_["session_id"] == "Georgi Martsenkov@mercedesamggt4#spielberg gp#0"


def stint_rows() -> list[dict[str, Any]]:
    """3 laps, a refuel stop in lap 3, 60 rows a second, as an .ibt records them."""
    rows = []
    v = default_values()
    v.update(SessionTime=0.0, LapCompleted=0, FuelLevel=20.0, Speed=50.0)

    def run(seconds: float, **changes: Any) -> None:
        v.update(changes)
        for _ in range(int(seconds * 60)):
            v["SessionTime"] = round(v["SessionTime"] + 1 / 60, 4)
            v["SessionTimeOfDay"] += 1 / 60
            rows.append(dict(v))

    run(0.5)
    for lap in (1, 2):
        run(2.0, FuelLevel=v["FuelLevel"] - 2.0)
        run(0.2, LapCompleted=lap)  # the time lags the counter
        run(0.5, LapLastLapTime=88.0 + lap)
    run(0.5, OnPitRoad=True, PlayerTrackSurface=2, Speed=20.0, PitSvFlags=0x10)
    run(0.5, PlayerCarInPitStall=True, PlayerTrackSurface=1, Speed=0.0)
    for level in (20.0, 25.0, 30.0):
        run(0.3, FuelLevel=level)
    run(0.5, Speed=5.0, PlayerCarInPitStall=False, PlayerTrackSurface=2, PitSvFlags=0)
    run(0.5, OnPitRoad=False, PlayerTrackSurface=3, Speed=40.0)
    run(2.0, FuelLevel=28.0)
    run(0.2, LapCompleted=3)
    run(1.0, LapLastLapTime=120.0)
    return rows


def test_ingest_of_a_stint_with_a_refuel_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ibt = write_ibt(tmp_path / "stint.ibt", session_yaml(session_id=0, team_id=0), stint_rows())
    out = ingest_json(ibt, capsys)
    laps = [r for r in out if r["kind"] == "lap"]
    assert [(r["lap_no"], r["stint"], r["lap_in_stint"], r["lap_time_ms"]) for r in laps] == [
        (1, 1, 1, 89000), (2, 1, 2, 90000), (3, 2, 1, 120000)]
    assert [r["fuel_used"] for r in laps] == [2.0, 2.0, None]
    assert laps[2]["detail"]["fuel_added_l"] == pytest.approx(14.0, abs=0.01)
    codes = [r["code"] for r in out if r["kind"] == "event"]
    assert codes == ["session_start", "pit_entry", "pit_stop", "pit_go", "pit_exit"]
    assert all(r["session_id"] == "Ann Able@mx5 mx52016#spa combined#0" for r in out)


def test_a_corrupt_ibt_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ibt = write_ibt(tmp_path / "ok.ibt", session_yaml(), stint_rows()[:10])
    huge = bytearray(ibt.read_bytes())
    struct.pack_into("<i", huge, 24, 2_000_000_000)  # numVars
    bad = tmp_path / "huge.ibt"
    bad.write_bytes(bytes(huge))
    empty = tmp_path / "empty.ibt"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.ibt"
    cut.write_bytes(ibt.read_bytes()[:-100])
    for path, reason in ((bad, "bad_var_count"), (empty, "empty"), (cut, "truncated")):
        assert main(["iracing", "ingest", str(path), "--json"]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        (line,) = captured.err.strip().splitlines()
        assert line.startswith(f"pitbox: error: {path}: not a valid .ibt file: {reason}")
