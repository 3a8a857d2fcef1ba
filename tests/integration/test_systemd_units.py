"""The units under systemd/ are what systemd itself accepts, pointing at a real `pitbox`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parents[2] / "systemd").glob("*.service"))
INSTALLED_BIN = "/opt/pitbox/.venv/bin/"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    assert INSTALLED_BIN in text  # units run the venv the image installs
    here = tmp_path / unit.name
    here.write_text(text.replace(INSTALLED_BIN, str(Path(sys.executable).parent) + "/"))
    proc = subprocess.run(["systemd-analyze", "verify", str(here)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert unit.name not in proc.stderr, proc.stderr


def test_gateway_unit_is_a_watched_notify_service() -> None:
    unit = (UNITS[0].parent / "pitbox-gateway.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=always",
                 "ExecStart=/opt/pitbox/.venv/bin/pitbox gateway run"):
        assert line in unit
