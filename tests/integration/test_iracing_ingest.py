"""`pitbox iracing ingest`: .ibt files through the same normalize / stint logic as live data."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pitbox.cli import main
from tests.irsdk_writer import default_values, session_yaml, write_ibt

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "iracing"
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


def stint_rows(*, refuel_l_per_s: float = 0.0) -> list[dict[str, Any]]:
    """3 laps, a refuel stop in lap 3, 60 rows a second, as an .ibt records them. The stop
    puts in 14 l in three steps, or at `refuel_l_per_s` a row at a time as the sim does."""
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
    if refuel_l_per_s:
        while v["FuelLevel"] < 30.0:
            run(1 / 60, FuelLevel=min(30.0, round(v["FuelLevel"] + refuel_l_per_s / 60, 4)))
    else:
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


def test_ingest_of_a_slow_refuel_read_row_by_row(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]):
    rows = stint_rows(refuel_l_per_s=2.4)  # 0.04 l a row
    ibt = write_ibt(tmp_path / "slow.ibt", session_yaml(session_id=0, team_id=0), rows)
    out = ingest_json(ibt, capsys)
    laps = [r for r in out if r["kind"] == "lap"]
    assert [r["fuel_used"] for r in laps] == [2.0, 2.0, None]
    assert laps[2]["detail"]["fuel_added_l"] == pytest.approx(14.0, abs=0.01)
    (exit_,) = [r for r in out if r.get("code") == "pit_exit"]
    assert exit_["detail"]["fuel_added_l"] == pytest.approx(14.0, abs=0.01)


def test_laps_waiting_for_their_time_at_a_session_change_and_at_the_end_are_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rows = [dict(r) for r in stint_rows()[:320]]  # lap 2 crossed, its time not yet come
    assert rows[-1]["LapCompleted"] == 2 and rows[-1]["LapLastLapTime"] == 89.0
    nxt = dict(rows[-1], SessionNum=1, LapCompleted=0, LapLastLapTime=0.0)
    for i in range(60):  # the race: one lap, the file ends 0.2 s after the line
        row = dict(nxt, SessionTime=round(5.0 + i / 60, 4), LapCompleted=0 if i < 48 else 1)
        rows.append(row)
    ibt = write_ibt(tmp_path / "two.ibt", session_yaml(session_id=0, team_id=0), rows)
    out = ingest_json(ibt, capsys)
    laps = [(r["session_id"][-1], r["lap_no"], r["lap_time_ms"]) for r in out
            if r["kind"] == "lap"]
    assert laps == [("0", 1, 89000), ("0", 2, 0), ("1", 1, 0)]


def test_a_missing_pyirsdk_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch):
    ibt = write_ibt(tmp_path / "ok.ibt", session_yaml(), stint_rows()[:10])
    monkeypatch.setitem(sys.modules, "irsdk", None)  # import irsdk now fails, as if absent
    assert main(["iracing", "ingest", str(ibt), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("pitbox: error: ") and "pyirsdk" in line


def test_a_missing_pyyaml_is_one_error_line(tmp_path: Path):
    ibt = write_ibt(tmp_path / "ok.ibt", session_yaml(), stint_rows()[:10])
    code = ("import sys; sys.modules['yaml'] = None; from pitbox.cli import main; "
            f"sys.exit(main(['iracing', 'ingest', {str(ibt)!r}, '--json']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=False)
    assert run.returncode == 1 and run.stdout == ""
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("pitbox: error: ") and "PyYAML" in line


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
