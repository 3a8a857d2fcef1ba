"""Group outbox rows into MQTT messages (pure): one message = one kind of one session of one rig.

Rows keep their outbox order inside a message, and messages come out in the order of their
first row, so per-rig order survives batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgpack

from gateway.outbox import Row
from gateway.uplink import wire

ENVELOPE_OVERHEAD = 512  # generous room for the envelope's own fields


class Message(NamedTuple):
    kind: str
    rows: tuple[Row, ...]
    payload: bytes


def batch(rows: Sequence[Row], *, device: str, sent_ns: int, max_records: int,
          max_bytes: int = wire.MAX_MESSAGE_BYTES) -> list[Message]:
    groups: dict[tuple[str, str, str], list[list[Row]]] = {}
    order: list[tuple[str, str, str]] = []
    sizes: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row.kind, row.rig, row.session_id)
        chunks = groups.get(key)
        if chunks is None:
            chunks = groups[key] = [[]]
            order.append(key)
            sizes[key] = ENVELOPE_OVERHEAD
        size = len(row.body) + 16
        if len(chunks[-1]) >= max_records or (chunks[-1] and sizes[key] + size > max_bytes):
            chunks.append([])
            sizes[key] = ENVELOPE_OVERHEAD
        chunks[-1].append(row)
        sizes[key] += size
    out = []
    for key in order:
        for chunk in groups[key]:
            out.append(Message(key[0], tuple(chunk), _encode(device, key, chunk, sent_ns)))
    return out


def _encode(device: str, key: tuple[str, str, str], rows: list[Row], sent_ns: int) -> bytes:
    kind, rig, session_id = key
    records = [{"seq": r.seq, **msgpack.unpackb(r.body, raw=False)} for r in rows]
    return wire.pack(device, rig, session_id, kind, sent_ns, records)
