"""The outbox against a model of what it promises, on a real SQLite file, in random orders of
append, commit, claim, ack, release and restart (hypothesis' stateful testing).

Promises checked after every step: a record committed is never lost (it is pending until
acked, and handed out again after a restart until then); a record handed out is not handed
out again while it is out; an acked record comes back only after a restart, and only while
its stored row still holds records not acked; per rig, seq order is the order of appending;
`pending()` counts what is committed and not acked. At the end everything drains and the
file is empty.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.outbox import Outbox, Row
from tests.unit import records_factory as rf

RIGS = ("rig-a", "rig-b", "rig-c")


class OutboxModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-model-"))
        self.box = Outbox(self.dir / "o.sqlite")
        self.next_id = 0
        self.buffered: list[int] = []  # appended, not committed
        self.unacked: set[int] = set()  # committed, never acked
        self.acked: set[int] = set()  # acked at least once
        self.may_return: set[int] = set()  # acked before a restart: may be handed out again
        self.out: dict[int, Row] = {}  # handed out, neither acked nor released
        self.seq_of: dict[int, int] = {}
        self.rig_of: dict[int, str] = {}

    def teardown(self) -> None:
        try:
            self.drain()
        finally:
            self.box.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def drain(self) -> None:
        """The end of every run: all that was committed comes out, and the file empties."""
        self.commit()
        self.box.ack(list(self.out.values()))  # (a release would hide a cursor that skipped)
        self.unacked.difference_update(self.out)
        for _ in range(100):  # bounded; a few rounds empty it
            self.box.flush()  # deletes what is acked
            rows = self.box.claim(1000)
            if not rows:
                break
            self.box.ack(rows)
            self.unacked.difference_update(self.id_of(r) for r in rows)
        assert not self.unacked, f"{len(self.unacked)} committed records never came out"
        assert self.box.pending() == 0
        assert self.box.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0

    @staticmethod
    def id_of(row: Row) -> int:
        return int(row.to_dict()["mono_ns"])

    # -- what the gateway and the uplink do ------------------------------------------------
    @rule(rig=st.sampled_from(RIGS), kinds=st.lists(st.sampled_from("ssssssl"), min_size=1,
                                                    max_size=90))
    def append(self, rig: str, kinds: list[str]) -> None:
        recs = []
        for k in kinds:
            self.next_id += 1  # the record's id travels as its mono_ns
            make = rf.sample if k == "s" else rf.lap
            rec = make(self.next_id, rig=rig, sid=f"{rig}@x#y#1")
            recs.append(dataclasses.replace(rec, mono_ns=self.next_id))
            self.buffered.append(self.next_id)
            self.rig_of[self.next_id] = rig
        self.box.append(recs)

    @rule()
    def commit(self) -> None:
        assert self.box.flush() == len(self.buffered)
        self.unacked.update(self.buffered)
        self.buffered.clear()

    @rule(n=st.integers(1, 150))
    def claim(self, n: int) -> None:
        rows = self.box.claim(n)
        assert len(rows) <= n
        for r in rows:
            rid = self.id_of(r)
            assert r.rig == self.rig_of[rid]
            assert rid not in self.out, f"record {rid} handed out twice"
            assert rid in self.unacked or rid in self.may_return, f"record {rid} came back"
            assert self.seq_of.setdefault(rid, r.seq) == r.seq, "a record changed its seq"
            self.out[rid] = r
        if len(rows) < n:
            # A short claim means nothing else is waiting that is not out or acked.
            assert self.unacked <= self.out.keys(), "committed records not handed out"

    @rule(data=st.data())
    @precondition(lambda self: bool(self.out))
    def ack_some(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.out)), min_size=1, unique=True))
        self.box.ack([self.out.pop(i) for i in ids])
        self.unacked.difference_update(ids)
        self.may_return.difference_update(ids)
        self.acked.update(ids)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.out))
    def release_some(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.out)), min_size=1, unique=True))
        self.box.release([self.out.pop(i) for i in ids])

    @rule(kill=st.booleans())
    def restart(self, kill: bool) -> None:
        """A clean stop (close: commits what was buffered) or a kill (buffer lost)."""
        if kill:
            self.box.conn.close()  # nothing flushed: what was only appended is gone
            self.box._checkpointer.stop()
            self.buffered.clear()
        else:
            self.box.close()
            self.unacked.update(self.buffered)
            self.buffered.clear()
        self.box = Outbox(self.dir / "o.sqlite")
        self.out.clear()
        self.may_return |= self.acked  # acks not yet deleted with a commit may come back

    # -- promises --------------------------------------------------------------------------
    @invariant()
    def pending_counts_what_is_committed_and_not_acked(self) -> None:
        pending = self.box.pending()
        assert len(self.unacked) <= pending <= len(self.unacked) + len(self.may_return)

    @invariant()
    def each_rigs_seqs_follow_the_order_of_appending(self) -> None:
        by_rig: dict[str, list[tuple[int, int]]] = {}
        for rid, seq in self.seq_of.items():
            by_rig.setdefault(self.rig_of[rid], []).append((seq, rid))
        for pairs in by_rig.values():
            assert [rid for _, rid in sorted(pairs)] == sorted(rid for _, rid in pairs)


class TestOutboxModel(OutboxModel.TestCase):  # type: ignore[name-defined]
    settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
