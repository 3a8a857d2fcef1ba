"""Recovery from an update a pulled plug interrupted mid health check, on real slots.

The plug is pulled deterministically: the trial's restart command is `kill -9 $PPID`, so the
updater dies at exactly the moment it has switched `current` to the untested slot. Then:
- at boot, the command pitbox-update-recover.service runs (read from the unit file) switches
  back, even though the untested slot's own updater is broken — it runs the `good` slot's;
- `Updater.recover()` rolls back and restarts the gateway, but never while a session is live.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware.update.installer import VenvInstaller
from firmware.update.slots import Slots
from firmware.update.updater import (
    NOTHING_TO_RECOVER,
    POSTPONED,
    ROLLED_BACK,
    UP_TO_DATE,
    UPDATED,
    Updater,
)
from tests.integration.test_update_kit import Fleet, running_version, update_cmd

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "pitbox-update-recover.service"
PULL_THE_PLUG = "sh -c 'kill -9 $PPID'"  # the "restart" kills the updater that runs it


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fleet, Path]:
    """5.0.0 in slot a (good), and 5.1.0 — whose own updater is broken — left on trial in
    slot b by a pulled plug. Copied per test."""
    work = tmp_path_factory.mktemp("fleet")
    fleet = Fleet(work)
    root = work / "root"
    first = subprocess.run(update_cmd(fleet.bundle("5.0.0"), root, fleet, "--no-restart"),
                           capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    trial = subprocess.run(update_cmd(fleet.bundle("5.1.0", broken_updater=True), root, fleet,
                                      "--restart-cmd", PULL_THE_PLUG),
                           capture_output=True, text=True, timeout=120, check=False)
    assert trial.returncode == -9, trial.stderr  # died mid-trial, as on a pulled plug
    return fleet, root


@pytest.fixture
def box(installed: tuple[Fleet, Path], tmp_path: Path) -> tuple[Fleet, Path]:
    fleet, template = installed
    root = tmp_path / "root"
    shutil.copytree(template, root, symlinks=True)
    return fleet, root


def updater_for(fleet: Fleet, root: Path) -> Updater:
    health = root / "health.json"
    return Updater(root=root, public_pem=fleet.public_pem,
                   installer=VenvInstaller(pip_python=sys.executable),
                   restart_cmd=[str(root / "current/bin/python"), "-m", "tinybox",
                                "--health-file", str(health)],
                   health_file=health, deadline_s=20, uplink_grace_s=0, poll_s=0.05)


def boot_recovery_cmd(root: Path) -> list[str]:
    """The unit's ExecStart, with /opt/pitbox moved to `root`."""
    [line] = [ln for ln in UNIT.read_text().splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart=").replace("/opt/pitbox", str(root)))


def test_the_pulled_plug_left_the_untested_slot_current(box: tuple[Fleet, Path]) -> None:
    _, root = box
    slots = Slots(root)
    assert slots.current() == "b" and running_version(root) == "5.1.0"
    assert slots.good() == "a"
    assert slots.state()["trial"] == {"slot": "b", "version": "5.1.0", "previous": "a"}


def test_boot_recovery_runs_the_good_slot_and_rolls_back_despite_a_broken_updater(
        box: tuple[Fleet, Path]) -> None:
    _, root = box
    # What the old unit ran: the untested slot's own updater. Broken, so nothing rolls back.
    old = subprocess.run([str(root / "current/bin/pitbox"), "update", "--recover", "--no-restart",
                          "--root", str(root)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert old.returncode != 0 and "updater is broken" in old.stderr
    assert Slots(root).current() == "b"
    proc = subprocess.run(boot_recovery_cmd(root), capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "an interrupted update to 5.1.0 was rolled back; running 5.0.0 (slot a)" in proc.stderr
    assert "update: recover: rolled back; running 5.0.0 (slot a)" in proc.stdout
    slots = Slots(root)
    assert slots.current() == "a" and slots.good() == "a" and running_version(root) == "5.0.0"
    assert slots.state() == {"floor": "5.0.0"}
    assert not (root / "health.json").exists()  # --no-restart: the gateway starts after it
    again = subprocess.run(boot_recovery_cmd(root), capture_output=True, text=True, timeout=60,
                           check=False)  # every later boot: nothing to do
    assert again.returncode == 0 and "nothing to recover" in again.stdout


def test_without_good_boot_recovery_is_skipped_and_the_next_update_run_makes_it(
        box: tuple[Fleet, Path]) -> None:
    fleet, root = box
    condition = [ln for ln in UNIT.read_text().splitlines() if ln.startswith("Condition")]
    assert condition == ["ConditionPathIsSymbolicLink=/opt/pitbox/good"]  # systemd skips it
    (root / "good").unlink()  # a box set up before `good` existed, with a trial interrupted
    updater = updater_for(fleet, root)
    assert updater.apply(fleet.bundle("5.0.0")) == UP_TO_DATE  # a bundle that is no newer
    slots = Slots(root)
    assert slots.good() == "a" and slots.current() == "a"  # the trial was rolled back first
    assert slots.state() == {"floor": "5.0.0"} and running_version(root) == "5.0.0"


def test_recover_rolls_back_and_restarts_the_gateway(box: tuple[Fleet, Path],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    fleet, root = box
    updater = updater_for(fleet, root)
    caplog.set_level(logging.INFO, "pitbox.update")
    assert updater.recover() == ROLLED_BACK
    assert updater.slots.current() == "a" and running_version(root) == "5.0.0"
    assert json.loads((root / "health.json").read_text())["version"] == "5.0.0"  # restarted
    assert updater.slots.state() == {"floor": "5.0.0"} and updater.slots.good() == "a"
    assert "an interrupted update to 5.1.0 was rolled back" in caplog.text
    assert updater.recover() == NOTHING_TO_RECOVER


def test_recover_never_interrupts_a_live_session(box: tuple[Fleet, Path]) -> None:
    fleet, root = box
    updater = updater_for(fleet, root)
    live = {"version": "5.1.0", "ready": True, "healthy": True, "session_live": True}
    (root / "health.json").write_text(json.dumps(live))  # the trial version is carrying a race
    assert updater.recover() == POSTPONED
    assert updater.apply(fleet.bundle("5.2.0")) == POSTPONED  # nor does an update run over it
    slots = Slots(root)
    assert slots.current() == "b" and slots.state()["trial"]["version"] == "5.1.0"
    assert (root / "health.json").read_text() == json.dumps(live)  # not restarted
    assert [slots.info(n).version for n in "ab"] == ["5.0.0", "5.1.0"]  # type: ignore[union-attr]
    (root / "health.json").write_text(json.dumps({**live, "session_live": False}))
    assert updater.apply(fleet.bundle("5.2.0")) == UPDATED  # rolled back first, then updated
    assert slots.current() == "b" and running_version(root) == "5.2.0"
    assert slots.good() == "b" and slots.state() == {"floor": "5.2.0"}


def test_the_cli_says_75_while_a_session_is_live(box: tuple[Fleet, Path]) -> None:
    _, root = box
    (root / "health.json").write_text(json.dumps({"session_live": True}))
    proc = subprocess.run([sys.executable, "-m", "pitbox", "update", "--recover", "--root",
                           str(root), "--health-file", str(root / "health.json")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 75, proc.stderr
    assert "carrying a live session; rolling back after it" in proc.stderr
    assert Slots(root).current() == "b"
