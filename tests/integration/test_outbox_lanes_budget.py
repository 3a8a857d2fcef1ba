"""The outbox's lanes, budget, migrations and crash behaviour, on real SQLite files."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from gateway.outbox import Outbox
from gateway.outbox.store import BACKLOG, LIVE, migrations
from gateway.records import Lap, fields_of
from gateway.uplink import wire
from gateway.uplink.batching import batch
from tests.unit import records_factory as rf


def committed(box: Outbox, records: list) -> None:  # type: ignore[type-arg]
    box.append(records)
    box.flush()


def test_live_rows_go_before_the_backlog_which_drains_in_order(tmp_path: Path) -> None:
    clock = [100.0]
    box = Outbox(tmp_path / "o.sqlite", now=lambda: clock[0])
    committed(box, [rf.sample(i, rig=f"rig-{i % 2}") for i in range(6)])  # seq 1..6
    clock[0] += 60  # an outage
    box.mark_backlog()  # the uplink (re)connected: 1..6 are backlog now
    committed(box, [rf.sample(100), rf.lap(7)])  # seq 7, 8: live
    assert [r.seq for r in box.claim(3)] == [8, 7, 1]  # live lap, live sample, then backlog
    assert [r.seq for r in box.claim(10, lane=BACKLOG)] == [2, 3, 4, 5, 6]
    assert box.claim(10, lane=LIVE) == []


def test_rows_from_the_last_two_seconds_stay_live_across_a_reconnect(tmp_path: Path) -> None:
    clock = [100.0]
    box = Outbox(tmp_path / "o.sqlite", now=lambda: clock[0])
    committed(box, [rf.sample(1)])  # seq 1 at t=100
    clock[0] = 105.0
    committed(box, [rf.sample(2)])  # seq 2 at t=105
    clock[0] = 106.0
    box.mark_backlog()  # a one-second blip: seq 2 is what the team watches now
    assert box.live_from == 1
    assert [r.seq for r in box.claim(5, lane=LIVE)] == [2]
    assert [r.seq for r in box.claim(5, lane=BACKLOG)] == [1]


def test_a_released_row_is_handed_out_again_in_its_place(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    committed(box, [rf.sample(i) for i in range(6)])
    a, b = box.claim(2), box.claim(2)
    box.release(a)
    assert [r.seq for r in box.claim(10)] == [1, 2, 5, 6]  # 3, 4 are still in flight
    box.ack(b)
    box.flush()
    assert box.pending() == 4


def test_over_budget_the_oldest_samples_go_and_laps_and_events_stay(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, budget_bytes=30_000)
    for lap_no in range(1, 11):
        committed(box, [rf.sample(lap_no * 100 + i) for i in range(50)] + [rf.lap(lap_no), rf.event()])
    assert box.used_bytes() <= 30_000
    stats = box.stats()
    assert stats["lap"].rows == 10 and stats["event"].rows == 10
    assert stats["sample"].evicted > 0 and stats["lap"].evicted == 0
    kept = [r.to_dict()["lap_distance_m"] for r in box.claim(10_000) if r.kind == "sample"]
    assert kept == sorted(kept) and kept[-1] == 100.0 + 1049  # the newest samples survive
    box.close()
    again = Outbox(path)  # the counters live in the file: `pitbox outbox stats` sees them
    assert again.stats()["sample"].evicted == stats["sample"].evicted


def test_evictions_before_a_quiet_spell_are_logged_within_a_minute(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    box = Outbox(tmp_path / "o.sqlite", budget_bytes=5_000, now=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="pitbox.outbox")
    committed(box, [rf.sample(i) for i in range(100)])  # over budget: logged at once
    first = box.evictions.total["sample"]
    assert first > 0 and len(caplog.records) == 1
    clock[0] += 20
    committed(box, [rf.sample(i) for i in range(100, 150)])  # counted, said at most once a minute
    later = box.evictions.total["sample"] - first
    assert later > 0 and len(caplog.records) == 1
    # The cars stop (a red flag): no more records, only the gateway's idle commits.
    for _ in range(50):
        clock[0] += 1.0
        box.flush()
    assert len(caplog.records) == 2, "evictions of the last minute were never logged"
    assert f"{later} sample" in caplog.records[1].getMessage()
    box.close()


def test_laps_go_only_when_no_sample_is_left(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget_bytes=3_000)
    committed(box, [rf.lap(i) for i in range(1, 30)])
    committed(box, [rf.sample(1)])
    stats = box.stats()
    assert stats["sample"].rows == 0 and stats["sample"].evicted == 1
    assert 0 < stats["lap"].rows < 29 and stats["lap"].evicted == 29 - stats["lap"].rows
    laps = [r.to_dict()["lap_no"] for r in box.claim(100)]
    assert laps == list(range(30 - len(laps), 30))  # the oldest laps went


def test_rows_in_flight_are_not_evicted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget_bytes=2_000)
    committed(box, [rf.sample(i) for i in range(5)])
    flying = box.claim(5)
    committed(box, [rf.sample(i) for i in range(5, 40)])
    left = {r.seq for r in box.claim(100)}
    # Each record's stored row is still there (a row holds a rig's samples of one commit).
    assert {r.chunk for r in flying} <= {row[0] for row in box.conn.execute("SELECT seq FROM outbox")}
    assert not left & {r.seq for r in flying}


def test_a_foundation_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
        rig TEXT NOT NULL, session_id TEXT NOT NULL, priority INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL, body BLOB NOT NULL);
        CREATE INDEX outbox_order ON outbox (priority, seq);""")
    db.execute("INSERT INTO outbox (kind, rig, session_id, priority, ts_ns, body) VALUES"
               " ('lap', 'rig-a', 's', 1, 5, ?)", (msgpack.packb(rf.lap(1).to_dict()),))
    db.commit()
    db.close()
    box = Outbox(path)
    assert [m.name for m in migrations.applied(box.db)] == [
        "m001_outbox", "m002_evictions", "m003_priorities", "m004_record_arrays"]
    assert box.pending() == 1 and box.stats()["lap"].evicted == 0
    committed(box, [rf.lap(2)])
    new, old = box.claim(5)
    assert [new.seq, old.seq] == [2, 1]  # 1 was buffered before this start: backlog
    # The old row is still a map and goes out as wire version 2, the new one as version 3.
    assert (old.fields, new.fields) == (None, fields_of(Lap))
    assert old.to_dict() == rf.lap(1).to_dict() and new.to_dict() == rf.lap(2).to_dict()
    msgs = batch([new, old], device="dev-1", sent_ns=1, max_records=100)
    assert [[(s, rec.lap_no) for e in wire.decode(m.payload) for s, rec in e.records]
            for m in msgs] == [[(2, 2)], [(1, 1)]]


def test_rows_buffered_under_the_old_priorities_take_the_new_order(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    committed(box, [rf.state(), rf.event(), rf.lap(1), rf.sample(1)])
    box.close()
    db = sqlite3.connect(path)  # as an older build left them: events 1 (with laps), states 2
    db.execute("UPDATE outbox SET priority = CASE kind WHEN 'event' THEN 1 WHEN 'state' THEN 2"
               " ELSE priority END")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_priorities'")
    db.commit()
    db.close()
    box = Outbox(path)
    assert [(r.kind, r.priority) for r in box.claim(10)] == [
        ("lap", 1), ("event", 2), ("state", 3), ("sample", 5)]
    box.close()


WRITER = """
import os, sys
from gateway.outbox import Outbox
from tests.unit import records_factory as rf
box = Outbox(sys.argv[1])
start = int(sys.argv[2])
for i in range(start, start + 40):  # 40 commits of 25 laps each, then killed mid-stream
    box.append([rf.lap(i * 25 + j) for j in range(25)])
    box.flush()
box.append([rf.lap(99_999)])
os.kill(os.getpid(), 9)
"""


def run_writer(path: Path, start: int) -> None:
    proc = subprocess.run([sys.executable, "-c", WRITER, str(path), str(start)],
                          check=False, timeout=60)
    assert proc.returncode == -9


def test_order_is_kept_across_kills_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    for start in (0, 40, 80):
        run_writer(path, start)
    box = Outbox(path)
    rows = box.claim(10_000)
    laps = [r.to_dict()["lap_no"] for r in rows]
    assert laps == list(range(120 * 25))  # every committed lap, none uncommitted, in seq order
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)


def test_a_torn_wal_tail_loses_only_whole_commits(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    run_writer(path, 0)
    wal = Path(str(path) + "-wal")
    size = wal.stat().st_size
    assert size > 10_000, "the killed writer left its commits in the WAL"
    with open(wal, "r+b") as f:  # a power cut tore the last frames
        f.truncate(size - 3_000)
        f.seek(0, 2)
        f.write(b"\xde\xad" * 100)
    box = Outbox(path)
    assert box.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    laps = [r.to_dict()["lap_no"] for r in box.claim(10_000)]
    assert laps == list(range(len(laps)))  # a prefix of what was written
    assert len(laps) % 25 == 0 and 0 < len(laps) < 40 * 25  # whole commits only
