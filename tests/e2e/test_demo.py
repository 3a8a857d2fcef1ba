"""`make demo`'s command, run as a user runs it: a subprocess on embedded defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cloud.store.sqlite import SqliteStore


def test_demo_runs_the_whole_pipeline_and_stores_every_lap(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pitbox", "demo", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every lap of the sample session is in the store" in proc.stdout
    assert "outbox    drained (0 rows left)" in proc.stdout
    store = SqliteStore(tmp_path / "cloud" / "store.sqlite")
    try:
        sessions = [c for c in store.collections()
                    if "~" not in c and c not in ("deadletters", "devices")]
        assert len(sessions) == 1
        laps = sorted(int(d) for d, _ in store.docs(sessions[0]) if d.isdigit())
        assert laps == [1, 2, 3, 4, 5]
        info = store.get(sessions[0], "info")
        assert info is not None and info["track"] == "silverstone"
        assert store.get(sessions[0], "state") is not None
        assert store.docs(sessions[0] + "~samples")
    finally:
        store.close()


def test_demo_with_a_missing_capture_says_so_and_fails(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pitbox", "demo", "--workdir", str(tmp_path),
                           "--capture", str(tmp_path / "nope.pbxcap")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "nope.pbxcap" in proc.stderr and "Traceback" not in proc.stderr
