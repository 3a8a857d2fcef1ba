"""`pitbox outbox stats` on a real outbox file that was over its budget."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from pitbox.cli import main
from tests.unit import records_factory as rf


def test_outbox_stats_shows_rows_bytes_and_evictions_by_kind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, budget_bytes=8_000)
    box.append([rf.sample(i) for i in range(100)] + [rf.lap(1), rf.lap(2)])
    box.flush()
    box.close()
    cfg = tmp_path / "box.toml"
    cfg.write_text(f'[outbox]\npath = "{path}"\nbudget_mb = 0.5\n')
    assert main(["outbox", "stats", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    lap_line = next(line for line in out.splitlines() if line.strip().startswith("lap"))
    sample_line = next(line for line in out.splitlines() if line.strip().startswith("sample"))
    assert " 2 rows" in lap_line and "evicted 0 ever" in lap_line
    evicted = int(sample_line.split("evicted ")[1].split()[0])
    assert evicted > 50 and f"{100 - evicted} rows" in sample_line
    assert "of budget 0.5 MB" in out.splitlines()[0]


def test_outbox_stats_of_an_empty_outbox_says_so(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    Outbox(tmp_path / "o.sqlite").close()
    cfg = tmp_path / "box.toml"
    cfg.write_text(f'[outbox]\npath = "{tmp_path / "o.sqlite"}"\n')
    assert main(["outbox", "stats", "--config", str(cfg)]) == 0
    assert "empty (budget 1024.0 MB)" in capsys.readouterr().out


def test_outbox_stats_without_an_outbox_is_one_error_line_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no --config: the default path, ./outbox.sqlite
    assert main(["outbox", "stats"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pitbox: error: no outbox at outbox.sqlite") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_outbox_stats_only_reads_the_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.sqlite"  # a file from before migrations: stats must not migrate it
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
               " rig TEXT NOT NULL, session_id TEXT NOT NULL, priority INTEGER NOT NULL,"
               " ts_ns INTEGER NOT NULL, body BLOB NOT NULL)")
    db.execute("INSERT INTO outbox (kind, rig, session_id, priority, ts_ns, body) VALUES"
               " ('lap', 'rig-a', 's', 1, 5, x'80')")
    db.commit()
    db.close()
    before = path.read_bytes()
    path.chmod(0o444)  # read-only, as for a user who may look but not write
    cfg = tmp_path / "box.toml"
    cfg.write_text(f'[outbox]\npath = "{path}"\n')
    try:
        assert main(["outbox", "stats", "--config", str(cfg)]) == 0
    finally:
        path.chmod(0o644)
    assert " 1 rows" in next(line for line in capsys.readouterr().out.splitlines()
                             if line.strip().startswith("lap"))
    assert path.read_bytes() == before
    names = {n for (n,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "_sqlite_migrations" not in names and "evictions" not in names
