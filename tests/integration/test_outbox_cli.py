"""`pitbox outbox stats` on a real outbox file that was over its budget."""

from __future__ import annotations

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
    cfg = tmp_path / "box.toml"
    cfg.write_text(f'[outbox]\npath = "{tmp_path / "o.sqlite"}"\n')
    assert main(["outbox", "stats", "--config", str(cfg)]) == 0
    assert "empty (budget 1024.0 MB)" in capsys.readouterr().out
