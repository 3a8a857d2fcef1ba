"""A pulled plug during an update: `pitbox update` (a real process, its pip child included) is
SIGKILLed at seeded random points — while installing, right after the switch, while waiting
for the health check — and after every kill the box must still have a working slot: `current`
points at a complete slot whose code really runs, and `good` at a complete one too. The tiny
gateway takes a second to report healthy, so the kills aimed just after the switch land in the
trial; the next run must roll each such trial back (and say so) before it does anything else."""

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
READY_AFTER_S = 1.0  # the tiny gateway's start-up: a kill 0-0.4 s after the switch is mid-trial
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
    good = slots.good()  # what boot-time recovery would run
    assert good is not None and slots.info(good) is not None, f"good slot {good} is incomplete"
    trial = slots.state().get("trial")
    if trial is not None:
        assert good == trial["previous"], (good, trial)
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
    killed_count = mid_trial = rolled_back = 0
    pending = None  # the trial the last kill left, until a run rolls it back
    for k in range(1, KILLS + 1):  # bounded
        version = f"3.0.{k}"
        versions.add(version)
        milestone = MILESTONES[k % len(MILESTONES)]
        delay = rng.uniform(0.0, 0.4 if milestone else 2.5)
        bundle = fleet.bundle(version, ready_after_s=READY_AFTER_S)
        killed, out = run_and_kill(update_cmd(bundle, root, fleet), milestone, delay)
        killed_count += killed
        trial = Slots(root).state().get("trial")
        if pending is not None and trial != pending:  # this run dealt with the last one first
            assert (f"an interrupted update to {pending['version']} was rolled back"
                    in out), out
            rolled_back += 1
        mid_trial += trial is not None and trial != pending
        pending = trial
        running = assert_a_working_slot(root, versions)
        print(f"kill {k}: after {milestone or 'start'} +{delay:.2f} s, killed={killed}, "
              f"{'mid-trial, ' if trial else ''}running {running}")
        assert "Traceback" not in out
    assert killed_count >= KILLS // 2, "the kills all came too late to test anything"
    assert mid_trial >= 1, "no kill landed during a health check: recovery was never tested"
    final = subprocess.run(update_cmd(fleet.bundle("4.0.0"), root, fleet), capture_output=True,
                           text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stderr
    if pending is not None:
        assert f"an interrupted update to {pending['version']} was rolled back" in final.stderr
        rolled_back += 1
    assert rolled_back == mid_trial  # every interrupted trial was undone, and said so
    assert assert_a_working_slot(root, {"4.0.0"}) == "4.0.0"
    assert Slots(root).state() == {"floor": "4.0.0"} and Slots(root).good() == Slots(root).current()
