"""The updater end to end on real virtualenv slots: tiny wheels really installed with pip, the
"gateway" really restarted from the slot `current` points at, and every fault leaving the
previous version running with one clear line saying so."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.update.installer import VenvInstaller
from firmware.update.manifest import UpdateError, new_fleet_key
from firmware.update.updater import POSTPONED, UP_TO_DATE, UPDATED, Updater
from tests.integration.test_update_kit import Fleet, running_version, update_cmd

RUNNING = "still running 2.0.0 (slot a)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fleet, Path]:
    """A box with tinybox 2.0.0 in slot a (installed once, copied per test)."""
    work = tmp_path_factory.mktemp("fleet")
    fleet = Fleet(work)
    root = work / "root"
    proc = subprocess.run(update_cmd(fleet.bundle("2.0.0"), root, fleet, "--no-restart"),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return fleet, root


@pytest.fixture
def box(installed: tuple[Fleet, Path], tmp_path: Path) -> tuple[Fleet, Updater]:
    fleet, template = installed
    root = tmp_path / "root"
    shutil.copytree(template, root, symlinks=True)
    health = root / "health.json"
    updater = Updater(root=root, public_pem=fleet.public_pem,
                      installer=VenvInstaller(pip_python=sys.executable),
                      restart_cmd=[str(root / "current/bin/python"), "-m", "tinybox",
                                   "--health-file", str(health)],
                      health_file=health, deadline_s=20, uplink_grace_s=0, poll_s=0.05)
    return fleet, updater


def assert_still_on_2(updater: Updater) -> None:
    assert updater.slots.current() == "a"
    assert running_version(updater.root) == "2.0.0"
    assert updater.slots.state().get("trial") is None


def test_the_first_install_is_a_real_venv_with_the_wheel_in_it(
        installed: tuple[Fleet, Path]) -> None:
    _, root = installed
    assert os.readlink(root / "current") == "slots/a"
    assert (root / "slots/a/pyvenv.cfg").exists()
    assert running_version(root) == "2.0.0"
    assert json.loads((root / "state.json").read_text()) == {"floor": "2.0.0"}


def test_a_newer_bundle_is_installed_switched_to_and_kept(box: tuple[Fleet, Updater],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    fleet, updater = box
    caplog.set_level(logging.INFO, "pitbox.update")
    assert updater.apply(fleet.bundle("2.1.0")) == UPDATED
    assert updater.slots.current() == "b" and running_version(updater.root) == "2.1.0"
    assert updater.slots.state() == {"floor": "2.1.0"}
    assert json.loads(updater.health_file.read_text())["version"] == "2.1.0"  # type: ignore[union-attr]
    assert "now running 2.1.0 (slot b): ready, uplink connected" in caplog.text
    assert updater.apply(fleet.bundle("2.1.0")) == UP_TO_DATE


def test_a_bundle_signed_by_another_key_leaves_the_box_alone(box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    rogue, _ = new_fleet_key()
    with pytest.raises(UpdateError) as err:
        updater.apply(fleet.bundle("2.1.0", private_pem=rogue))
    assert "signature does not verify" in str(err.value) and RUNNING in str(err.value)
    assert not updater.slots.dir("b").exists()  # nothing was written, not even the other slot
    assert_still_on_2(updater)


def test_a_tampered_bundle_leaves_the_box_alone(box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    bundle = fleet.bundle("2.1.0")
    data = bytearray(bundle.read_bytes())
    data[data.rindex(b"PK\x05\x06") - 40] ^= 0x01
    bundle.write_bytes(bytes(data))
    with pytest.raises(UpdateError, match="tampered") as err:
        updater.apply(bundle)
    assert RUNNING in str(err.value) and not updater.slots.dir("b").exists()
    assert_still_on_2(updater)


def test_a_truncated_bundle_leaves_the_box_alone(box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    bundle = fleet.bundle("2.1.0")
    bundle.write_bytes(bundle.read_bytes()[:2500])
    with pytest.raises(UpdateError, match="truncated") as err:
        updater.apply(bundle)
    assert RUNNING in str(err.value)
    assert_still_on_2(updater)


def test_a_downgrade_is_refused_even_after_a_rollback(box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    with pytest.raises(UpdateError, match="1.9.9 is older than 2.0.0") as err:
        updater.apply(fleet.bundle("1.9.9"))
    assert RUNNING in str(err.value)
    assert_still_on_2(updater)
    # The floor is what passed a health check, not what runs: forcing slot a back does not
    # reopen the door to versions below the floor.
    assert updater.apply(fleet.bundle("2.1.0")) == UPDATED
    updater.slots.switch("a")
    with pytest.raises(UpdateError, match="2.0.5 is older than 2.1.0"):
        updater.apply(fleet.bundle("2.0.5"))


def test_a_new_version_that_fails_its_health_check_is_rolled_back(
        box: tuple[Fleet, Updater], caplog: pytest.LogCaptureFixture) -> None:
    fleet, updater = box
    with pytest.raises(UpdateError) as err:
        updater.apply(fleet.bundle("2.1.0", healthy=False))
    msg = str(err.value)
    assert "update to 2.1.0 failed its health check (it reports error)" in msg
    assert "switched back" in msg and RUNNING in msg
    assert_still_on_2(updater)
    assert json.loads(updater.health_file.read_text())["version"] == "2.0.0"  # type: ignore[union-attr]
    assert updater.slots.state() == {"floor": "2.0.0"}


def old_report(updater: Updater, *, uplink_connected: bool) -> None:
    """What the running 2.0.0 gateway says right now (fresh: the gate trusts only that)."""
    assert updater.health_file is not None
    updater.health_file.write_text(json.dumps({
        "version": "2.0.0", "ready": True, "healthy": True, "session_live": False,
        "uplink_connected": uplink_connected, "state": "online" if uplink_connected else "offline"}))


def test_where_the_uplink_was_connected_a_version_that_cannot_connect_is_rolled_back(
        box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    old_report(updater, uplink_connected=True)
    updater.deadline_s = 1.5  # the grace period (0 here) no longer excuses an offline uplink
    with pytest.raises(UpdateError) as err:
        updater.apply(fleet.bundle("2.1.0", uplink=False))
    msg = str(err.value)
    assert "update to 2.1.0 failed its health check (no healthy report within 2 s" in msg
    assert "the uplink the previous version had is not connected" in msg and RUNNING in msg
    assert_still_on_2(updater)
    assert updater.slots.state() == {"floor": "2.0.0"}  # 2.0.0 stays installable
    assert updater.slots.good() == "a"


def test_at_an_offline_venue_capturing_is_enough(box: tuple[Fleet, Updater],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    fleet, updater = box
    caplog.set_level(logging.INFO, "pitbox.update")
    old_report(updater, uplink_connected=False)
    assert updater.apply(fleet.bundle("2.1.0", uplink=False)) == UPDATED
    assert "uplink still offline" in caplog.text
    assert updater.slots.state() == {"floor": "2.1.0"} and updater.slots.good() == "b"


def test_a_restart_that_never_reports_times_out_and_rolls_back(box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    updater.restart_cmd = ["true"]  # "restarts", but nothing ever writes a health report
    updater.deadline_s = 1.0
    start = time.monotonic()
    with pytest.raises(UpdateError, match="no healthy report within 1 s"):
        updater.apply(fleet.bundle("2.1.0"))
    assert time.monotonic() - start < 15
    assert_still_on_2(updater)


def test_no_update_while_a_session_is_live(box: tuple[Fleet, Updater]) -> None:
    fleet, updater = box
    assert updater.health_file is not None
    updater.health_file.write_text(json.dumps({"version": "2.0.0", "session_live": True}))
    assert updater.apply(fleet.bundle("2.1.0")) == POSTPONED
    assert_still_on_2(updater)
    updater.health_file.write_text(json.dumps({"version": "2.0.0", "session_live": False}))
    assert updater.apply(fleet.bundle("2.1.0")) == UPDATED


def test_the_cli_says_postponed_with_exit_75_and_refusals_in_one_line(
        installed: tuple[Fleet, Path], tmp_path: Path) -> None:
    fleet, template = installed
    root = tmp_path / "root"
    shutil.copytree(template, root, symlinks=True)
    (root / "health.json").write_text(json.dumps({"session_live": True}))
    proc = subprocess.run(update_cmd(fleet.bundle("2.1.0"), root, fleet), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 75, proc.stderr
    assert "a session is live; 2.1.0 postponed (still running 2.0.0 (slot a))" in proc.stderr
    proc = subprocess.run(update_cmd(fleet.bundle("1.0.0"), root, fleet), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 1
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("pitbox: error:")]
    assert "version 1.0.0 is older than 2.0.0 (no downgrades); still running 2.0.0" in line
    assert "Traceback" not in proc.stderr


def test_the_cli_downloads_resumably_then_updates_and_drops_the_download(
        installed: tuple[Fleet, Path], tmp_path: Path) -> None:
    import threading

    from tests.integration.test_update_bundle import FlakyServer

    fleet, template = installed
    root = tmp_path / "root"
    shutil.copytree(template, root, symlinks=True)
    srv = FlakyServer(fleet.bundle("2.2.0").read_bytes(), drops=1)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        cmd = update_cmd(Path("unused"), root, fleet)
        at = cmd.index("--bundle")
        cmd[at:at + 2] = ["--url", f"http://127.0.0.1:{srv.server_address[1]}/latest.pbxupd"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    finally:
        srv.shutdown()
        srv.server_close()
    assert proc.returncode == 0, proc.stderr
    assert "download attempt 1/5" in proc.stderr  # the first response was cut off
    assert srv.ranges[0] is None and srv.ranges[1] is not None and srv.ranges[1].startswith("bytes=")
    assert "update: updated; running 2.2.0 (slot b)" in proc.stdout
    assert running_version(root) == "2.2.0"
    assert list((root / "downloads").iterdir()) == []
