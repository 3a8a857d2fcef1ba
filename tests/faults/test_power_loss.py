"""A pulled plug, at every moment that matters: the outbox's files rebuilt as a power cut
could have left them, and opened by the outbox as the box would at the next boot.

A real writer process (the outbox, its checkpointer thread, acks and the deletes they cause)
runs with `powerlog.c` preloaded, which records every positional write, truncate and sync
that SQLite asks of the outbox's file and its WAL, in order, plus a mark each time a commit
returned. A power cut at event *c* keeps, per file, everything written before that file's last
sync before *c*, and of what came after it any subset, the last kept write possibly torn at a
512-byte sector (a disk may reorder unsynced writes and tear the one in progress). That is
the disk's contract SQLite relies on; a card that lies about its syncs breaks any database.

After every such cut: the file passes `PRAGMA integrity_check`, every record whose commit had
returned is there (unless it was acked first: then the broker has it), none is there twice,
and each rig's records keep their order.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.outbox import Outbox

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SECTOR = 512
INSTALL_LINE = "sudo apt-get install gcc (or `make deps`)"

WRITER = """
import dataclasses, os, sqlite3, sys
from gateway.outbox import Outbox
from tests.unit import records_factory as rf

path, mark_path = sys.argv[1], sys.argv[2]
box = Outbox(path)
mark = os.open(mark_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
other = sqlite3.connect(path)  # a second connection, as the checkpointer's, for checkpoints
n = 0
for commit in range(36):
    recs = []
    for rig in ("rig-a", "rig-b", "rig-c"):
        for _ in range(12 if commit % 4 else 70):  # now and then a busy commit of 200+
            n += 1
            make = rf.lap if n % 9 == 0 else rf.sample
            rec = make(n, rig=rig, sid=f"{rig}@x#y#1")
            recs.append(dataclasses.replace(rec, mono_ns=n))
    box.append(recs)
    if commit % 3 == 2:  # the uplink acked some: their deletes ride on this commit
        rows = box.claim(25)
        box.ack(rows)
        ids = [r.to_dict()["mono_ns"] for r in rows]
        os.write(mark, ("ack " + " ".join(map(str, ids)) + "\\n").encode())
    box.flush()
    os.write(mark, ("commit " + " ".join(str(r.mono_ns) for r in recs) + "\\n").encode())
    if commit % 6 == 5:
        other.execute("PRAGMA wal_checkpoint(PASSIVE)")
os._exit(0)  # no close: the files stay as the last commit left them
"""


@dataclass(frozen=True)
class Event:
    kind: int  # 1 open, 2 write, 3 sync, 4 truncate, 5 mark, 6 unlink
    file: int
    offset: int
    data: bytes


def read_log(path: Path) -> list[Event]:
    raw, events, at = path.read_bytes(), [], 0
    while at < len(raw):
        kind, file, offset, n = struct.unpack_from("=BIqI", raw, at)
        at += 17
        events.append(Event(kind, file, offset, raw[at:at + n]))
        at += n
    return events


def power_cut(events: list[Event], cut: int, rng: random.Random, out: Path) -> None:
    """Write the files as a power cut before event `cut` may have left them, into `out`."""
    names = {e.file: Path(e.data.decode()).name for e in events[:cut] if e.kind == 1}
    # File creation and deletion are taken as durable in order (a simplification: only the
    # data of unsynced writes is lost here, not directory entries).
    gone = {e.file for e in events[:cut] if e.kind == 6}
    last_sync = {f: max((i for i, e in enumerate(events[:cut]) if e.kind == 3 and e.file == f),
                        default=-1) for f in names}
    images = {f: bytearray() for f in names}
    for i, e in enumerate(events[:cut]):
        if e.kind not in (2, 4) or e.file not in names:
            continue
        if i > last_sync[e.file] and rng.random() < 0.5:
            continue  # not synced yet: this write never reached the card
        data = e.data
        if i > last_sync[e.file] and e.kind == 2 and len(data) > SECTOR and rng.random() < 0.3:
            data = data[:SECTOR * rng.randrange(1, len(data) // SECTOR + 1)]  # torn
        image = images[e.file]
        if e.kind == 4:
            del image[e.offset:]
            image.extend(bytes(max(0, e.offset - len(image))))
        else:
            if len(image) < e.offset:
                image.extend(bytes(e.offset - len(image)))
            image[e.offset:e.offset + len(data)] = data
    for f, name in names.items():
        if f not in gone:
            (out / name).write_bytes(bytes(images[f]))


def marks_before(events: list[Event], cut: int) -> tuple[list[list[int]], set[int]]:
    """Commits that had returned before `cut` (their record ids) and the ids acked by then."""
    commits: list[list[int]] = []
    acked: set[int] = set()
    for e in events[:cut]:
        if e.kind != 5:
            continue
        for line in e.data.decode().splitlines():
            word, *ids = line.split()
            if word == "commit":
                commits.append([int(i) for i in ids])
            else:
                acked.update(int(i) for i in ids)
    return commits, acked


@pytest.fixture(scope="module")
def powerlog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail(f"no C compiler for the power-loss recorder; {INSTALL_LINE}", pytrace=False)
    lib = tmp_path_factory.mktemp("powerlog") / "powerlog.so"
    subprocess.run([cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(lib),
                    str(HERE / "powerlog.c"), "-ldl", "-lpthread"], check=True, timeout=120)
    return lib


def test_a_power_cut_at_any_moment_loses_no_committed_record_and_never_corrupts(
        powerlog: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    log = tmp_path / "disk.log"
    env = dict(os.environ, LD_PRELOAD=str(powerlog), POWERLOG=str(log), POWERLOG_MATCH="o.sqlite",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", WRITER, str(run / "o.sqlite"),
                           str(run / "commits.mark")], env=env, cwd=ROOT, timeout=120,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    events = read_log(log)
    syncs = [i for i, e in enumerate(events) if e.kind == 3]
    marks = [i for i, e in enumerate(events) if e.kind == 5]
    assert len(marks) >= 36 + 12 and syncs, "the recorder saw the commits"
    db_file = next(e.file for e in events if e.kind == 1 and e.data.endswith(b"/o.sqlite"))
    assert any(e.kind == 2 and e.file == db_file for e in events[marks[0]:]), \
        "no checkpoint copied the WAL back while commits went on: that path would go untested"
    rng = random.Random(20261206)
    # Just before and just after every sync and every mark, and anywhere at random.
    cuts = sorted({c for i in syncs + marks for c in (i, i + 1)} |
                  {rng.randrange(1, len(events) + 1) for _ in range(60)})
    checked = 0
    every_commit, _ = marks_before(events, len(events))
    for cut in cuts:
        commits, acked = marks_before(events, cut)
        committed = {i for ids in commits for i in ids}
        in_flight = set(every_commit[len(commits)]) if len(commits) < len(every_commit) else set()
        for attempt in range(2):
            disk = tmp_path / f"cut-{cut}-{attempt}"
            disk.mkdir()
            power_cut(events, cut, rng, disk)
            if not (disk / "o.sqlite").exists():
                assert not commits
                continue
            problem = check_boot(disk / "o.sqlite", committed, acked, in_flight)
            assert problem is None, f"power cut before event {cut}/{len(events)}: {problem}"
            shutil.rmtree(disk)
            checked += 1
    print(f"power loss: {checked} cut states checked over {len(events)} disk events "
          f"({len(syncs)} syncs, {len(marks)} marks)")
    assert checked >= 200


def check_boot(path: Path, committed: set[int], acked: set[int],
               in_flight: set[int]) -> str | None:
    """Open the outbox the way the box does after the cut; a problem, or None."""
    db = sqlite3.connect(path)
    try:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    if verdict != "ok":
        return f"integrity_check says {verdict}"
    box = Outbox(path)
    try:
        rows = box.claim(1_000_000)
    finally:
        box.close()
    ids = [int(r.to_dict()["mono_ns"]) for r in rows]
    if len(set(ids)) != len(ids):
        return "a record is there twice"
    got_in_flight = set(ids) & in_flight
    if got_in_flight and got_in_flight != in_flight:  # there or not, but never in part
        return f"the commit in flight at the cut is half there ({len(got_in_flight)} of " \
               f"{len(in_flight)} records)"
    lost = committed - acked - set(ids)
    if lost:
        return f"{len(lost)} committed records lost, e.g. {sorted(lost)[:5]}"
    by_rig: dict[str, list[tuple[int, int]]] = {}
    for r, i in zip(rows, ids, strict=True):
        by_rig.setdefault(r.rig, []).append((r.seq, i))
    for rig, pairs in by_rig.items():
        if [i for _, i in sorted(pairs)] != sorted(i for _, i in pairs):
            return f"{rig}: seq order is not append order"
    return None
