"""Hot documents: at most one write per document per interval; a message is released only
after every document it touched was written. Driven by an injected clock (plain ints)."""

from __future__ import annotations

from cloud.bridge.hot import HotDocs
from cloud.store.base import DocWrite

S = 1_000_000_000


def state(seq: int, stint: int, doc: str = "state") -> DocWrite:
    return DocWrite("sess", doc, {"seq": seq, "stint": stint}, merge=True)


def test_a_document_never_written_is_due_at_once() -> None:
    hot = HotDocs(S)
    assert hot.hold("m1", [state(1, 1)])
    flush = hot.due(0)
    assert flush.docs == [state(1, 1)]
    assert hot.committed(flush, 0) == ["m1"] and len(hot) == 0


def test_a_document_is_written_at_most_once_per_interval_with_the_latest_state() -> None:
    hot = HotDocs(S)
    hot.hold("m0", [state(1, 1)])
    hot.committed(hot.due(0), 0)
    writes = 0
    released: list[object] = []
    for i in range(1, 31):  # 30 states at 10 Hz: 3 s
        now = i * S // 10
        hot.hold(f"m{i}", [state(1 + i, 1 + i)])
        flush = hot.due(now)
        writes += len(flush.docs)
        released += hot.committed(flush, now)
    assert writes == 3  # at 1.0, 2.0 and 3.0 s
    assert released[-1] == "m30"  # the last one written at 3.0 s carried seq 31
    assert hot.next_due_ns() is None


def test_a_message_waits_until_all_its_documents_were_written() -> None:
    hot = HotDocs(S)
    hot.hold("m0", [state(1, 1, "a")])
    hot.committed(hot.due(0), 0)
    assert hot.hold("m1", [state(2, 2, "a"), state(2, 2, "b")])
    first = hot.due(S // 2)  # b was never written: due; a was written at 0: not yet
    assert [d.doc_id for d in first.docs] == ["b"]
    assert hot.committed(first, S // 2) == []
    assert hot.next_due_ns() == S
    second = hot.due(S)
    assert [d.doc_id for d in second.docs] == ["a"]
    assert hot.committed(second, S) == ["m1"]


def test_nothing_is_released_when_the_commit_did_not_happen() -> None:
    hot = HotDocs(S)
    hot.hold("m1", [state(1, 1)])
    hot.due(0)  # the write failed: committed() never called
    assert len(hot) == 1 and hot.waiting_messages == 1
    assert hot.committed(hot.due(5), 5) == ["m1"]


def test_an_older_state_folds_under_a_newer_one_in_any_order() -> None:
    hot = HotDocs(S)
    hot.hold("new", [DocWrite("s", "state", {"seq": 9, "stint": 3}, merge=True)])
    hot.hold("old", [DocWrite("s", "state", {"seq": 5, "stint": 2, "pit": True}, merge=True)])
    [doc] = hot.due(0).docs
    assert doc.data == {"seq": 9, "stint": 3, "pit": True}


def test_a_redelivered_older_state_after_a_newer_write_is_dropped_and_released() -> None:
    hot = HotDocs(S)
    hot.hold("new", [state(9, 3)])
    hot.committed(hot.due(0), 0)
    assert not hot.hold("old", [state(5, 2)])  # nothing to wait for: ack with its batch
    assert hot.stale_dropped == 1 and len(hot) == 0


def test_force_writes_everything_held_at_shutdown() -> None:
    hot = HotDocs(S)
    hot.hold("a", [state(1, 1)])
    hot.committed(hot.due(0), 0)
    hot.hold("b", [state(2, 2)])
    assert hot.due(1).docs == []
    assert hot.committed(hot.due(1, force=True), 1) == ["b"]
