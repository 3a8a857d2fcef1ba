"""Hot documents: at most one write per document per interval; a message is released only
after every document it touched was written. Driven by an injected clock (plain ints)."""

from __future__ import annotations

import itertools

import pytest

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


def test_two_instances_sharing_a_device_stay_at_one_write_a_second_per_document() -> None:
    """The broker alternates one device's messages between two instances, and each coalesces
    on its own: with the default interval their writes together stay <= 1/s."""
    from cloud.bridge.hot import HOT_INTERVAL_S

    pair = [HotDocs(), HotDocs()]
    assert pair[0].interval_ns == int(HOT_INTERVAL_S * S) == 2 * S
    writes: list[tuple[int, int]] = []  # (instance, time)
    run_s = 20
    for i in range(run_s * 10):  # states at 10 Hz, round robin like a shared subscription
        now = i * S // 10
        hot = pair[i % 2]
        hot.hold(f"m{i}", [state(1 + i, 1)])
        for which, h in enumerate(pair):
            flush = h.due(now)
            writes += [(which, now)] * len(flush.docs)
            h.committed(flush, now)
    assert len(writes) <= run_s + 2  # <= 1 write/s sustained, plus each one's first
    for which in (0, 1):
        times = [t for w, t in writes if w == which]
        assert all(b - a >= 2 * S for a, b in itertools.pairwise(times))


def test_the_bridge_cli_defaults_to_the_two_instance_interval_and_says_why(
        capsys: pytest.CaptureFixture[str]) -> None:
    from cloud.bridge.hot import HOT_INTERVAL_S
    from pitbox.cli import build_parser, main

    parser = build_parser()
    assert parser.parse_args(["bridge", "run"]).hot_interval == HOT_INTERVAL_S
    assert parser.parse_args(["bridge", "run", "--hot-interval", "3"]).hot_interval == 3.0
    with pytest.raises(SystemExit):
        main(["bridge", "run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--hot-interval S" in text and "(default 2:" in text
    assert "2 instances stay <= 1 write/s per document" in text
