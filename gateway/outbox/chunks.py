"""Several records to an outbox row (pure): grouping a commit's records, splitting a row.

A commit's samples are grouped by (rig, session), in arrival order, up to `MAX_RECORDS` a
row. One SQLite row and one index entry for a few dozen samples is what lets a saturated box
commit hundreds of thousands of records a second; at a venue's real rate a 50 ms commit holds
a sample or two per rig, so most rows hold one. Only samples: the budget evicts whole rows,
and a few samples more than needed may go, but never a lap or an event for its neighbour's
sake (the other kinds are a few a second, one to a row). Claims and acks stay record by
record (each record keeps its own seq): only storage is grouped.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

MAX_RECORDS = 64  # samples per row: ~9 KB, a small share of a message
GROUPED = "sample"

Pending = tuple[str, str, str, int, int, bytes]  # kind, rig, session_id, priority, ts_ns, body
Group = tuple[str, str, str, int, int, list[bytes]]  # ... with the bodies of the row's records


def group(rows: Sequence[Pending], max_records: int = MAX_RECORDS) -> list[Group]:
    """The rows to write, in order of their first record. Seqs are given in this order, so
    each rig's records must keep their capture order through it: a rig's row of samples ends
    when it is full or when another record of that rig comes (a lap between two samples gets
    the seq between theirs)."""
    open_: dict[tuple[str, str], Group] = {}  # (rig, session) → its sample row being filled
    out: list[Group] = []
    for kind, rig, session_id, priority, ts_ns, body in rows:
        key = (rig, session_id)
        if kind != GROUPED:
            out.append((kind, rig, session_id, priority, ts_ns, [body]))
            open_.pop(key, None)  # the rig's later samples start a new row: seqs follow capture
            continue
        g = open_.get(key)
        if g is None or len(g[5]) >= max_records:
            g = open_[key] = (kind, rig, session_id, priority, ts_ns, [])
            out.append(g)
        g[5].append(body)
    return out


def split(body: bytes, n: int) -> list[bytes]:
    """The `n` msgpack values a row's body holds, as bytes each. ValueError when the body does
    not hold exactly `n` whole values."""
    if n == 1:
        return [body]
    unpacker = msgpack.Unpacker()
    unpacker.feed(body)
    out: list[bytes] = []
    start = 0
    try:
        for _ in range(n):
            unpacker.skip()
            end = unpacker.tell()
            out.append(body[start:end])
            start = end
    except Exception as exc:  # OutOfData, or msgpack's error for a bad type byte
        raise ValueError(f"row holds {len(out)} whole records, not {n}") from exc
    if start != len(body):
        raise ValueError(f"row holds more than {n} records")
    return out
