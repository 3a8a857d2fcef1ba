"""The bridge's writer (`cloud.bridge.writer`) on a real SQLite file, without a broker: what
a bug in the store client or in preparing a batch does to writes, dead letters and counts.
Deliveries come from a paho client that never connects; the clock is injected."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.bridge.delivery import Conn, Delivery
from cloud.bridge.hot import HotDocs
from cloud.bridge.writer import Writer
from cloud.store.base import DocWrite
from cloud.store.sqlite import SqliteStore
from gateway.records import Record
from gateway.uplink.wire import Envelope, encode
from tests.integration.test_bridge import BUG, WrappedStore, raising
from tests.unit import records_factory as rf

S = 1_000_000_000
SID = rf.SID
CONN = Conn(mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True))


def message(mid: int, *records: tuple[int, Record]) -> Delivery:
    kind = records[0][1].KIND
    payload = encode(Envelope("box-1", "rig-a", SID, kind, 1, tuple(records)))
    return Delivery(f"/devices/box-1/events/{kind}", payload, mid, 1, CONN.generation, CONN)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "bridge.db")
    yield s
    s.close()


def writer(store: WrappedStore | SqliteStore, hot: HotDocs | None = None) -> Writer:
    return Writer(store, HotDocs(2 * S) if hot is None else hot, Counter(), prefix="/devices",
                  now=lambda: 7, mono=lambda: 10 * S)


def test_a_hot_document_a_bug_trips_dead_letters_the_messages_waiting_on_it(
        store: SqliteStore) -> None:
    w = writer(WrappedStore(store, raising(BUG, lambda docs: any(d.doc_id == "state"
                                                                 for d in docs))))
    first, lap, second = message(1, (200, rf.state(2))), message(2, (101, rf.lap(1))), \
        message(3, (201, rf.state(3)))
    batch = w.prepare([first, lap, second])
    assert batch is not None and batch.ready == [lap]
    with pytest.raises(AttributeError):
        w.commit(batch)  # one write for all: the loop backs off and retries one by one
    assert w.stats["dead_letters"] == 0 and w.hot.waiting_messages == 2
    batch.one_by_one = True
    acks = w.commit(batch)
    assert {id(m) for m in acks} == {id(first), id(lap), id(second)} and len(acks) == 3
    assert [d for d, _ in store.docs(SID)] == ["1"] and len(w.hot) == 0
    dead = [d for _, d in store.docs("deadletters")]
    assert sorted(d["mid"] for d in dead) == [1, 3]
    assert {d["reason"] for d in dead} == {f"bridge error: AttributeError: {BUG} ({SID}/state)"}
    assert (w.stats["dead_letters"], w.stats["dead_bridge_error"]) == (2, 2)


def test_a_commit_that_cannot_write_even_a_dead_letter_counts_and_releases_nothing(
        store: SqliteStore) -> None:
    broken = [True]
    w = writer(WrappedStore(store, raising(BUG, lambda docs: broken[0])))
    batch = w.prepare([message(1, (200, rf.state(2))), message(2, (101, rf.lap(1)))])
    assert batch is not None
    batch.one_by_one = True
    for _ in range(2):
        with pytest.raises(AttributeError):
            w.commit(batch)
    assert w.stats["dead_letters"] == 0 and w.hot.waiting_messages == 1
    assert store.collections() == []
    broken[0] = False  # the same batch, once the store takes writes again
    assert [m.mid for m in w.commit(batch)] == [2, 1]
    assert w.stats["dead_letters"] == 0 and [d for d, _ in store.docs(SID)] == ["1", "state"]


class HoldBugOnce(HotDocs):
    """HotDocs with a bug that raises on the first `hold` only."""

    def __init__(self) -> None:
        super().__init__(2 * S)
        self.raised = False

    def hold(self, token: Hashable, writes: Iterable[DocWrite]) -> bool:
        if not self.raised:
            self.raised = True
            raise KeyError("seq")
        return super().hold(token, writes)


def test_a_prepare_a_bug_broke_counts_and_logs_its_messages_once_when_run_again(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    """Before: filing counted (and logged dead letters) as it went, so every re-run after a
    bug counted the batch again."""
    w = writer(store, HoldBugOnce())
    garbage = Delivery("/devices/box-1/events/lap", b"\xc1 not msgpack", 1, 1, 0, CONN)
    msgs = [garbage, message(2, (101, rf.lap(1)), (102, rf.lap(2))), message(3, (200, rf.state()))]
    with caplog.at_level(logging.WARNING, "pitbox.bridge"), pytest.raises(KeyError):
        w.prepare(msgs)
    assert sum(w.stats.values()) == 0
    with caplog.at_level(logging.WARNING, "pitbox.bridge"):
        batch = w.prepare(msgs)
    assert batch is not None and len(batch.filed) == 3
    assert {k: w.stats[k] for k in ("messages", "records", "merges", "dead_letters",
                                    "dead_malformed")} == {
        "messages": 3, "records": 3, "merges": 1, "dead_letters": 1, "dead_malformed": 1}
    assert sum("dead letter (malformed)" in r.getMessage() for r in caplog.records) == 1
