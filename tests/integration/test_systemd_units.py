"""The units under systemd/ are what systemd itself accepts, pointing at a real `pitbox`, and
each service passes the hardening gate: `systemd-analyze security` exposure ≤ 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNITS = sorted([*UNIT_DIR.glob("*.service"), *UNIT_DIR.glob("*.timer")])
SERVICES = [u for u in UNITS if u.suffix == ".service"]
INSTALLED_BIN = "/opt/pitbox/current/bin/"
THRESHOLD = 20  # ten times the printed score: 2.0

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed on this machine")


def installed_here(tmp_path: Path) -> Path:
    """Every unit and drop-in copied to `tmp_path`, ExecStart pointing at this venv's pitbox."""
    venv_bin = str(Path(sys.executable).parent) + "/"
    for src in UNIT_DIR.rglob("*"):
        if src.is_file():
            dst = tmp_path / src.relative_to(UNIT_DIR)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text().replace(INSTALLED_BIN, venv_bin))
    return tmp_path


def test_there_are_the_four_units_and_the_drop_in() -> None:
    names = {u.name for u in UNITS}
    assert names == {"pitbox-gateway.service", "pitbox-provision.service",
                     "pitbox-update.service", "pitbox-update.timer"}
    assert (UNIT_DIR / "pitbox-gateway.service.d" / "hardening.conf").is_file()


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    if unit.suffix == ".service":
        assert INSTALLED_BIN in unit.read_text()  # units run the slot the updater switches
    here = installed_here(tmp_path) / unit.name
    proc = subprocess.run(["systemd-analyze", "verify", str(here)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert unit.name not in proc.stderr, proc.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_service_passes_the_hardening_gate(unit: Path, tmp_path: Path) -> None:
    here = installed_here(tmp_path) / unit.name
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                           f"--threshold={THRESHOLD}", str(here)],
                          capture_output=True, text=True, timeout=60, check=False)
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert score, proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{unit.name} scores {score.group(1)} (> {THRESHOLD / 10})"
    assert float(score.group(1)) <= THRESHOLD / 10


def test_every_hardening_line_has_its_comment() -> None:
    lines = (UNIT_DIR / "pitbox-gateway.service.d" / "hardening.conf").read_text().splitlines()
    settings = [i for i, line in enumerate(lines) if re.match(r"^[A-Z]\w+=", line)]
    assert len(settings) >= 25
    for i in settings:
        assert lines[i - 1].startswith("#"), f"no comment above: {lines[i]}"


def test_gateway_unit_is_a_watched_notify_service_with_credentials_and_gpio() -> None:
    unit = (UNIT_DIR / "pitbox-gateway.service").read_text()
    hardening = (UNIT_DIR / "pitbox-gateway.service.d" / "hardening.conf").read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure",
                 "StateDirectory=pitbox", "LoadCredential=device_key:",
                 "SupplementaryGroups=gpio",
                 "ExecStart=/opt/pitbox/current/bin/pitbox gateway run"):
        assert line in unit
    assert "DeviceAllow=char-gpiochip rw" in hardening and "DevicePolicy=closed" in hardening
    assert "PrivateDevices" not in unit + hardening  # it would hide /dev/gpiochip*


def test_provisioning_runs_only_on_first_boot_and_updates_at_a_random_time() -> None:
    provision = (UNIT_DIR / "pitbox-provision.service").read_text()
    assert "ConditionPathExists=!/var/lib/pitbox/device_key.pem" in provision
    timer = (UNIT_DIR / "pitbox-update.timer").read_text()
    assert re.search(r"^RandomizedDelaySec=\S+", timer, re.MULTILINE)
    assert "FixedRandomDelay=true" in timer
    assert "SuccessExitStatus=75" in (UNIT_DIR / "pitbox-update.service").read_text()
