"""A pulled plug during an update: `pitbox update` (a real process, its pip child included) is
SIGKILLed at seeded random points — while installing, right after the switch, while waiting
for the health check — and after every kill the box must still have a working slot: `current`
points at a complete slot whose code really runs. The next run recovers and finishes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from firmware.update.slots import Slots
from tests.integration.test_update_kit import Fleet, running_version, update_cmd

KILLS = 6
SEED = int(os.environ.get("PITBOX_KILL_SEED", "7"))
# Log lines the updater prints on its way; a kill is aimed at one of them plus a random delay.
MILESTONES = ("installing into slot", "switched to", None)  # None: a plain random time


def run_and_kill(cmd: list[str], milestone: str | None, delay_s: float) -> tuple[bool, str]:
    """Start `cmd`; SIGKILL its whole process group `delay_s` after `milestone` was logged.
    Returns (killed, what it printed)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if milestone is None or milestone in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if milestone is None:
        seen.set()
    try:
        seen.wait(timeout=60)
        time.sleep(delay_s)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)  # the updater and its pip child: a pulled plug
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=5)
    return killed, "".join(lines)


def assert_a_working_slot(root: Path, versions: set[str]) -> str:
    slots = Slots(root)
    current = slots.current()
    assert current is not None, "current points nowhere"
    info = slots.info(current)
    assert info is not None, f"current points at incomplete slot {current}"
    assert running_version(root) == info.version  # the slot's code really runs
    assert info.version in versions
    return info.version


def test_killing_the_updater_anywhere_never_leaves_the_box_without_a_working_slot(
        tmp_path: Path) -> None:
    rng = random.Random(SEED)
    fleet = Fleet(tmp_path)
    root = tmp_path / "root"
    first = subprocess.run(update_cmd(fleet.bundle("3.0.0"), root, fleet, "--no-restart"),
                           capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    versions = {"3.0.0"}
    killed_count = 0
    left_a_trial = False
    for k in range(1, KILLS + 1):  # bounded
        version = f"3.0.{k}"
        versions.add(version)
        milestone = MILESTONES[k % len(MILESTONES)]
        delay = rng.uniform(0.0, 0.4 if milestone else 2.5)
        killed, out = run_and_kill(update_cmd(fleet.bundle(version), root, fleet),
                                   milestone, delay)
        killed_count += killed
        if left_a_trial:  # the last kill came mid health check: this run must undo that first
            assert "an interrupted update to" in out and "was rolled back" in out, out
        left_a_trial = "trial" in Slots(root).state()
        running = assert_a_working_slot(root, versions)
        print(f"kill {k}: after {milestone or 'start'} +{delay:.2f} s, killed={killed}, "
              f"running {running}")
        assert "Traceback" not in out
    assert killed_count >= KILLS // 2, "the kills all came too late to test anything"
    final = subprocess.run(update_cmd(fleet.bundle("4.0.0"), root, fleet), capture_output=True,
                           text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stderr
    assert assert_a_working_slot(root, {"4.0.0"}) == "4.0.0"
    assert Slots(root).state() == {"floor": "4.0.0"}
