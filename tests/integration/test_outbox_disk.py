"""A full disk loses no lap: below the free-space floor the outbox stops growing (new records
push out the oldest samples), and a commit that fails anyway keeps its records in memory until
the disk has room again. The second test fills a real (tmpfs) file system to the last byte."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.errors import OutboxError
from gateway.outbox import Outbox
from gateway.outbox.store import MAX_PENDING_ROWS
from tests.unit import records_factory as rf


def kinds_in(box: Outbox) -> Counter[str]:
    rows = box.claim(10_000_000)
    box.release(rows)
    return Counter(r.kind for r in rows)


def test_below_the_floor_the_outbox_stops_growing_and_keeps_every_lap(tmp_path: Path) -> None:
    free = [10**9]
    box = Outbox(tmp_path / "o.sqlite", free_bytes=lambda: free[0], min_free_bytes=10**6)
    box.append([rf.sample(i) for i in range(2000)])
    box.flush()
    size = box.used_bytes()
    free[0] = 10**5  # something else filled the card
    for lap in range(1, 21):
        box.append([rf.sample(i) for i in range(50)] + [rf.lap(lap)])
        box.flush()
        assert box.used_bytes() <= size  # not a byte more than when the disk ran low
    kinds = kinds_in(box)
    assert kinds["lap"] == 20
    assert kinds["sample"] + box.stats()["sample"].evicted == 2000 + 20 * 50
    assert box.stats()["sample"].evicted >= 20 * 50 - 100
    free[0] = 10**9  # room again: it grows again
    box.append([rf.sample(i) for i in range(500)])
    box.flush()
    assert box.used_bytes() > size
    box.close()


def test_a_failing_commit_keeps_its_records_and_memory_keeps_laps_over_samples(
        tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.lap(1)])
    box.flush()
    box.conn.execute("PRAGMA query_only = ON")  # every write now fails, as on a read-only card
    box.append([rf.lap(2)] + [rf.sample(i) for i in range(MAX_PENDING_ROWS + 10)] + [rf.lap(3)])
    with pytest.raises(OutboxError, match="records wait in memory"):
        box.flush()
    assert len(box._pending) == MAX_PENDING_ROWS  # the ten oldest samples gave way, no lap
    box.conn.execute("PRAGMA query_only = OFF")
    assert box.flush() == MAX_PENDING_ROWS
    kinds = kinds_in(box)
    assert kinds["lap"] == 3 and kinds["sample"] == MAX_PENDING_ROWS - 2
    box.close()


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("filling a real file system needs root to mount a 4 MB tmpfs; the "
                    "injected-free-space test above covers the policy")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_real_full_disk_loses_no_lap(small_disk: Path) -> None:
    box = Outbox(small_disk / "o.sqlite", min_free_bytes=1_500_000)
    assert box.used_bytes() == 0
    laps = 0
    for _ in range(400):  # ~2.5 MB of records into the 2.5 MB above the floor, and more
        laps += 1
        box.append([rf.sample(i) for i in range(20)] + [rf.lap(laps)])
        box.flush()  # never fails: the floor holds it back
        time.sleep(0.01)  # commits at about the gateway's pace: the WAL gets checkpointed
    assert box.stats()["sample"].evicted > 0
    # Now fill the disk to the last byte and keep capturing laps.
    ballast = small_disk / "ballast"
    with open(ballast, "wb", buffering=0) as fh:
        try:
            for _ in range(10_000):  # bounded: 40 MB, ten times the disk
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    assert os.statvfs(small_disk).f_bavail == 0
    failures = 0
    for _ in range(30):
        laps += 1
        box.append([rf.sample(i) for i in range(100)] + [rf.lap(laps)])
        try:
            box.flush()
        except OutboxError as exc:
            failures += 1
            assert "records wait in memory" in str(exc)
    print(f"full disk: {failures} of 30 commits failed while it was full")
    ballast.unlink()  # the owner makes room
    box.flush()
    kinds = kinds_in(box)
    box.close()
    reopened = Outbox(small_disk / "o.sqlite")
    assert kinds["lap"] == laps == kinds_in(reopened)["lap"], f"{failures} commits failed"
    reopened.close()
