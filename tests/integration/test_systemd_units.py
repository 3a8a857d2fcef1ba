"""The units under systemd/ are what systemd itself accepts, pointing at a real `pitbox`, and
each service passes the hardening gate: `systemd-analyze security` exposure ≤ 2.0.

Without systemd-analyze these tests fail (they do not skip): the gate is part of `make test`,
and `make deps` installs it (Debian package `systemd`, in DEB_PKGS)."""

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
GOOD_BIN = "/opt/pitbox/good/bin/"  # the recovery unit runs the slot that last passed
THRESHOLD = 20  # ten times the printed score: 2.0
INSTALL_LINE = "sudo apt-get install systemd (or `make deps`)"


def systemd_analyze(path: str | None = None) -> str:
    """The systemd-analyze binary; a missing one fails the test with the line that installs it."""
    found = shutil.which("systemd-analyze", path=path)
    if found is None:
        pytest.fail(f"systemd-analyze not found: the hardening gate needs it; {INSTALL_LINE}",
                    pytrace=False)
    return found


def installed_here(tmp_path: Path) -> Path:
    """Every unit and drop-in copied to `tmp_path`, ExecStart pointing at this venv's pitbox."""
    venv_bin = str(Path(sys.executable).parent) + "/"
    for src in UNIT_DIR.rglob("*"):
        if src.is_file():
            dst = tmp_path / src.relative_to(UNIT_DIR)
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = src.read_text().replace(INSTALLED_BIN, venv_bin).replace(GOOD_BIN, venv_bin)
            dst.write_text(text)
    return tmp_path


def test_a_missing_systemd_analyze_fails_with_the_install_line(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        systemd_analyze(path=str(tmp_path))  # an empty PATH: as on a machine without systemd
    assert INSTALL_LINE in str(info.value)


def test_make_deps_installs_systemd_analyze() -> None:
    makefile = (UNIT_DIR.parent / "Makefile").read_text()
    [line] = [ln for ln in makefile.splitlines() if ln.startswith("DEB_PKGS")]
    assert "systemd" in line.split(":=", 1)[1].split()


def test_there_are_the_five_units_and_the_drop_in() -> None:
    names = {u.name for u in UNITS}
    assert names == {"pitbox-gateway.service", "pitbox-provision.service",
                     "pitbox-update.service", "pitbox-update.timer",
                     "pitbox-update-recover.service"}
    assert (UNIT_DIR / "pitbox-gateway.service.d" / "hardening.conf").is_file()


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    if unit.suffix == ".service":  # units run the slot the updater switches (or the good one)
        assert INSTALLED_BIN in unit.read_text() or GOOD_BIN in unit.read_text()
    here = installed_here(tmp_path) / unit.name
    proc = subprocess.run([systemd_analyze(), "verify", str(here)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert unit.name not in proc.stderr, proc.stderr


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_service_passes_the_hardening_gate(unit: Path, tmp_path: Path) -> None:
    here = installed_here(tmp_path) / unit.name
    proc = subprocess.run([systemd_analyze(), "security", "--offline=yes",
                           f"--threshold={THRESHOLD}", str(here)],
                          capture_output=True, text=True, timeout=60, check=False)
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert score, proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{unit.name} scores {score.group(1)} (> {THRESHOLD / 10})"
    assert float(score.group(1)) <= THRESHOLD / 10


@pytest.mark.parametrize("name", ["pitbox-gateway.service.d/hardening.conf",
                                  "pitbox-update-recover.service"])
def test_every_hardening_line_has_its_comment(name: str) -> None:
    lines = (UNIT_DIR / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ProtectSystem="))
    end = next((i for i, line in enumerate(lines) if line == "[Install]"), len(lines))
    settings = [i for i, line in enumerate(lines[:end]) if i >= start
                and re.match(r"^[A-Z]\w+=", line)]
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


def settings(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, values in order (comments and sections dropped)."""
    out: dict[str, list[str]] = {}
    for line in (UNIT_DIR / unit).read_text().splitlines():
        if re.match(r"^[A-Z]\w+=", line):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_provisioning_runs_only_on_first_boot_and_updates_at_a_random_time() -> None:
    provision = (UNIT_DIR / "pitbox-provision.service").read_text()
    assert "ConditionPathExists=!/var/lib/pitbox/device_key.pem" in provision
    timer = settings("pitbox-update.timer")
    assert timer["RandomizedDelaySec"] and timer["FixedRandomDelay"] == ["true"]
    # RandomizedDelaySec would stretch a boot-time check over the same window: recovery is
    # pitbox-update-recover's job, at boot, not this timer's.
    assert "OnBootSec" not in timer and "OnStartupSec" not in timer
    assert "SuccessExitStatus=75" in (UNIT_DIR / "pitbox-update.service").read_text()


def test_recovery_runs_at_boot_from_the_good_slot_before_the_gateway() -> None:
    recover = settings("pitbox-update-recover.service")
    [cmd] = recover["ExecStart"]
    assert cmd.startswith(GOOD_BIN + "pitbox update --recover") and "--no-restart" in cmd
    assert "pitbox-gateway.service" in recover["Before"][0].split()
    assert recover["Type"] == ["oneshot"] and recover["RemainAfterExit"] == ["yes"]
    assert "multi-user.target" in recover["WantedBy"]
    gateway = settings("pitbox-gateway.service")
    assert "pitbox-update-recover.service" in " ".join(gateway["Wants"]).split()
    assert "pitbox-update-recover.service" in " ".join(gateway["After"]).split()


def test_a_crash_looping_gateway_is_restarted_for_ever_and_never_reboots_the_box() -> None:
    # A reboot loop would keep the nightly update timer (up to 2 h of fixed random delay) from
    # ever delivering the fix; restarts keep the box up and the timer running.
    gateway = settings("pitbox-gateway.service")
    assert gateway["Restart"] == ["on-failure"]
    assert gateway["StartLimitIntervalSec"] == ["0"]  # no start limit: no point where it stops
    [restart_s] = gateway["RestartSec"]
    assert 2 <= int(restart_s) <= 30  # a crash loop leaves CPU to the updater; a crash costs s
    for unit in UNITS:  # nothing anywhere reboots the box on its own
        for key, values in settings(unit.name).items():
            if key.endswith("Action"):
                assert not any("reboot" in v for v in values), f"{unit.name}: {key}={values}"
