"""Group outbox rows into MQTT messages (pure): one message = records of one kind, of any rig.

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
ROW_OVERHEAD = 16  # a record's seq and its place in the array


class Message(NamedTuple):
    kind: str
    rows: tuple[Row, ...]
    payload: bytes


def batch(rows: Sequence[Row], *, device: str, sent_ns: int, max_records: int,
          max_bytes: int = wire.MAX_MESSAGE_BYTES) -> list[Message]:
    groups: dict[str, list[list[Row]]] = {}
    sizes: dict[str, int] = {}
    order: list[tuple[str, int]] = []  # (kind, chunk index) in order of each chunk's first row
    for row in rows:
        chunks = groups.get(row.kind)
        if chunks is None:
            chunks = groups[row.kind] = [[]]
            order.append((row.kind, 0))
            sizes[row.kind] = ENVELOPE_OVERHEAD
        size = len(row.body) + ROW_OVERHEAD
        if len(chunks[-1]) >= max_records or (chunks[-1] and sizes[row.kind] + size > max_bytes):
            chunks.append([])
            order.append((row.kind, len(chunks) - 1))
            sizes[row.kind] = ENVELOPE_OVERHEAD
        chunks[-1].append(row)
        sizes[row.kind] += size
    return [message(groups[kind][i], device=device, sent_ns=sent_ns) for kind, i in order]


def message(rows: Sequence[Row], *, device: str, sent_ns: int) -> Message:
    """One message of `rows` (all of one kind), in their order."""
    kind = rows[0].kind
    return Message(kind, tuple(rows), _encode(device, kind, rows, sent_ns))


def _encode(device: str, kind: str, rows: Sequence[Row], sent_ns: int) -> bytes:
    head = wire.pack(device, kind, sent_ns, [])
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


def is_record_body(body: bytes) -> bool:
    """Whether a stored body can be spliced into a message (a msgpack map, whole header)."""
    try:
        _, header_len = _map_header(body)
    except (ValueError, IndexError):  # not a map; empty
        return False
    return len(body) >= header_len


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
