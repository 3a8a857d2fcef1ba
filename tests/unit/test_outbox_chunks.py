"""Grouping a commit's records into stored rows, and splitting a row (pure)."""

import msgpack
import pytest

from gateway.outbox import chunks


def rec(kind: str, rig: str, i: int) -> chunks.Pending:
    return (kind, rig, "s", 5 if kind == "sample" else 1, i, msgpack.packb([rig, i]))


def seqs_by_rig(groups: list[chunks.Group]) -> dict[str, list[int]]:
    """Capture index (ts_ns here) of each rig's records in the order seqs are given."""
    out: dict[str, list[int]] = {}
    for _, rig, _, _, _, bodies in groups:
        out.setdefault(rig, []).extend(msgpack.unpackb(b)[1] for b in bodies)
    return out


def test_samples_of_a_rig_share_a_row_up_to_the_limit_and_other_kinds_go_alone():
    rows = [rec("sample", "a", i) for i in range(5)] + [rec("lap", "a", 5), rec("lap", "a", 6)]
    groups = chunks.group(rows, max_records=3)
    assert [(g[0], len(g[5])) for g in groups] == [("sample", 3), ("sample", 2), ("lap", 1),
                                                   ("lap", 1)]


def test_every_rigs_records_keep_their_capture_order_in_seq_order():
    rows = [rec("sample", "a", 0), rec("sample", "b", 1), rec("lap", "a", 2),
            rec("sample", "a", 3), rec("sample", "b", 4), rec("event", "b", 5),
            rec("sample", "a", 6), rec("sample", "b", 7)]
    groups = chunks.group(rows)
    assert seqs_by_rig(groups) == {"a": [0, 2, 3, 6], "b": [1, 4, 5, 7]}
    assert [(g[1], g[0], len(g[5])) for g in groups] == [
        ("a", "sample", 1), ("b", "sample", 2), ("a", "lap", 1), ("a", "sample", 2),
        ("b", "event", 1), ("b", "sample", 1)]


def test_split_gives_back_each_record_and_refuses_a_body_that_does_not_hold_n():
    bodies = [msgpack.packb(list(range(i))) for i in (0, 3, 20)]
    assert chunks.split(b"".join(bodies), 3) == bodies
    with pytest.raises(ValueError, match="2 whole records, not 3"):
        chunks.split(b"".join(bodies)[:-1], 3)
    with pytest.raises(ValueError, match="more than 2"):
        chunks.split(b"".join(bodies), 2)
