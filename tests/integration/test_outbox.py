"""The outbox against real SQLite files: commit, claim/ack/release, survival across reopen."""

import subprocess
import sys

import msgpack

from gateway.outbox import Outbox
from gateway.records import Lap, fields_of, values_of
from tests.unit import records_factory as rf


def test_nothing_is_visible_before_the_group_commit(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.lap(1)])
    assert box.pending() == 0
    assert box.flush() == 1
    assert box.pending() == 1


def test_claim_orders_by_priority_then_sequence(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.sample(0), rf.event(), rf.sample(1), rf.lap(1), rf.state(), rf.event("pit_exit"),
                rf.session(), rf.lap(2)])
    box.flush()
    kinds = [r.kind for r in box.claim(10)]
    # The order: session, lap, event, state before samples; each kind oldest first.
    assert kinds == ["session", "lap", "lap", "event", "event", "state", "sample", "sample"]


def test_claimed_rows_are_not_handed_out_twice_until_released(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.lap(i) for i in range(1, 6)])
    box.flush()
    first = box.claim(3)
    second = box.claim(3)
    assert [r.seq for r in first] == [1, 2, 3]
    assert [r.seq for r in second] == [4, 5]
    box.release(first)
    assert [r.seq for r in box.claim(10)] == [1, 2, 3]


def test_only_ack_deletes_and_sequences_are_never_reused(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.append([rf.lap(1), rf.lap(2)])
    box.flush()
    rows = box.claim(2)
    box.ack(rows)
    assert box.pending() == 0
    box.close()
    box = Outbox(path)
    box.append([rf.lap(3)])
    box.flush()
    assert [r.seq for r in box.claim(1)] == [3]  # AUTOINCREMENT: 1 and 2 are never reused


def test_body_is_the_records_values_under_their_field_names(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.lap(4)])
    box.flush()
    row = box.claim(1)[0]
    assert row.body == msgpack.packb(values_of(Lap)(rf.lap(4)))
    assert row.fields == fields_of(Lap)
    assert row.to_dict() == rf.lap(4).to_dict()
    assert (row.kind, row.rig, row.session_id) == ("lap", "rig-a", rf.SID)


def test_a_busy_commit_stores_records_together_and_hands_them_out_one_by_one(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    recs = [rf.sample(i, rig=f"rig-{i % 2}") for i in range(200)]
    box.append(recs)
    assert box.flush() == 200
    stored = box.conn.execute("SELECT seq, n, rig FROM outbox ORDER BY seq").fetchall()
    # Per rig, up to MAX_RECORDS a row, in order of each row's first record.
    assert [(n, rig) for _, n, rig in stored] == [(64, "rig-0"), (64, "rig-1"), (36, "rig-0"),
                                                 (36, "rig-1")]
    first = box.claim(70)  # one stored row and part of the next
    assert [r.seq for r in first] == list(range(1, 71))
    assert [r.to_dict()["lap_distance_m"] for r in first[:3]] == [
        recs[i].lap_distance_m for i in (0, 2, 4)]
    rest = box.claim(1000)
    assert [r.seq for r in rest] == list(range(71, 201))
    assert box.pending() == 200


def test_a_stored_row_goes_only_when_every_record_of_it_is_acked(tmp_path):
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.append([rf.sample(i) for i in range(1, 11)])  # one stored row of 10 samples
    box.flush()
    rows = box.claim(10)
    box.ack(rows[:4])
    box.release(rows[4:])
    assert box.pending() == 6
    again = box.claim(10)
    assert [r.seq for r in again] == list(range(5, 11))  # acked records are not handed out again
    box.flush()
    assert box.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    box.append([rf.lap(i) for i in range(1, 4)])  # laps, events, …: one to a row
    box.flush()
    assert box.conn.execute("SELECT n FROM outbox WHERE kind = 'lap'").fetchall() == [(1,)] * 3
    box.close()
    box = Outbox(path)  # restarted before the rest was acked: the whole row is sent again
    rows = [r for r in box.claim(100) if r.kind == "sample"]
    assert [r.seq for r in rows] == list(range(1, 11))  # the bridge dedups 1..4 on seq
    box.ack(rows)
    box.flush()
    assert box.pending() == 3
    assert box.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 3  # the laps


def test_acking_every_record_of_a_stored_row_deletes_it(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.sample(i) for i in range(1, 11)])
    box.flush()
    rows = box.claim(10)
    box.ack(rows[5:])
    box.ack(rows[:5])
    assert box.pending() == 0
    box.flush()
    assert box.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert box.usage() == {}


def test_committed_rows_survive_a_killed_process(tmp_path):
    """A writer killed right after its commit (no close) loses nothing that was committed."""
    path = tmp_path / "o.sqlite"
    code = (
        "import os, sys\n"
        "from gateway.outbox import Outbox\n"
        "from tests.unit import records_factory as rf\n"
        f"box = Outbox({str(path)!r})\n"
        "box.append([rf.lap(i) for i in range(1, 101)])\n"
        "box.flush()\n"
        "box.append([rf.lap(999)])\n"  # buffered, never committed
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=30)
    assert proc.returncode == -9
    box = Outbox(path)
    rows = box.claim(1000)
    assert [r.to_dict()["lap_no"] for r in rows] == list(range(1, 101))


def test_stats_counts_by_kind(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.lap(1), rf.lap(2), rf.sample(1)])
    box.flush()
    stats = box.stats()
    assert stats["lap"][0] == 2 and stats["sample"][0] == 1
    assert stats["lap"][1] == rf.lap(1).ts_ns
