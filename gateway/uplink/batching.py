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
    head = wire.pack(device, rig, session_id, kind, sent_ns, [])
    assert head.endswith(b"\x90")  # "records": [] comes last; splice the real array in its place
    packer = msgpack.Packer(use_bin_type=True)
    parts = [head[:-1], packer.pack_array_header(len(rows))]
    seq_key = packer.pack("seq")
    for r in rows:
        count, header_len = _map_header(r.body)
        # {"seq": n, **record}: the stored record map, one key longer, without unpacking it
        parts += (packer.pack_map_header(count + 1), seq_key, packer.pack(r.seq),
                  r.body[header_len:])
    return b"".join(parts)


def _map_header(body: bytes) -> tuple[int, int]:
    """(entries, header length) of the msgpack map `body` starts with."""
    first = body[0]
    if 0x80 <= first <= 0x8F:
        return first & 0x0F, 1
    if first == 0xDE:
        return int.from_bytes(body[1:3], "big"), 3
    if first == 0xDF:
        return int.from_bytes(body[1:5], "big"), 5
    raise ValueError(f"outbox row body is not a msgpack map (first byte {first:#x})")
