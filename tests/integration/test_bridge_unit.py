"""The cloud bridge's unit (cloud/systemd/pitbox-bridge.service): accepted by systemd, pointing
at a real `pitbox` with the bridge's command, restarted for ever, and through the same
hardening gate as the box's units (`systemd-analyze security` exposure <= 2.0)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.test_systemd_units import THRESHOLD, systemd_analyze

UNIT = Path(__file__).resolve().parents[2] / "cloud" / "systemd" / "pitbox-bridge.service"
INSTALLED_BIN = "/opt/pitbox-cloud/bin/"


def installed_here(tmp_path: Path) -> Path:
    venv_bin = str(Path(sys.executable).parent) + "/"
    here = tmp_path / UNIT.name
    here.write_text(UNIT.read_text().replace(INSTALLED_BIN, venv_bin))
    return here


def test_the_bridge_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_BIN}pitbox bridge run $BRIDGE_ARGS" in text
    proc = subprocess.run([systemd_analyze(), "verify", str(installed_here(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert UNIT.name not in proc.stderr, proc.stderr


def test_the_bridge_unit_passes_the_hardening_gate(tmp_path: Path) -> None:
    proc = subprocess.run([systemd_analyze(), "security", "--offline=yes",
                           f"--threshold={THRESHOLD}", str(installed_here(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert score, proc.stdout + proc.stderr
    assert proc.returncode == 0 and float(score.group(1)) <= THRESHOLD / 10, score.group(1)


def test_a_bridge_that_gives_up_is_started_again_for_ever() -> None:
    settings = dict(re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), flags=re.MULTILINE))
    assert settings["Restart"] == "always" and settings["StartLimitIntervalSec"] == "0"
    # The password comes from the environment file, never from the unit or its arguments.
    assert settings["EnvironmentFile"] == "/etc/pitbox/bridge.env"
    assert "PASSWORD" not in settings["ExecStart"]


def test_every_hardening_line_of_the_bridge_unit_has_its_comment() -> None:
    lines = UNIT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ProtectSystem="))
    end = lines.index("[Install]")
    settings = [i for i in range(start, end) if re.match(r"^[A-Z]\w+=", lines[i])]
    assert len(settings) >= 25
    for i in settings:
        assert lines[i - 1].startswith("#"), f"no comment above: {lines[i]}"
