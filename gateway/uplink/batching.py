"""Group outbox rows into MQTT messages (pure): one message = records of one kind, of any rig.

Rows keep their outbox order inside a message, and messages come out in the order of their
first row, so per-rig order survives batching. A row's stored bytes go into the message as
they are: an array under its `fields` (wire version 3), or a map for a row stored before
version 3 (`fields` None; sent as version 2). Rows of different shapes never share a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgpack

from gateway.outbox import Row
from gateway.uplink import wire

ENVELOPE_OVERHEAD = 512  # generous room for the envelope's own fields
ROW_OVERHEAD = 16  # a record's seq and its place in the array
_Shape = tuple[str, tuple[str, ...] | None]  # kind, fields (None: stored as a map)


class Message(NamedTuple):
    kind: str
    rows: tuple[Row, ...]
    payload: bytes


def batch(rows: Sequence[Row], *, device: str, sent_ns: int, max_records: int,
          max_bytes: int = wire.MAX_MESSAGE_BYTES) -> list[Message]:
    groups: dict[_Shape, list[list[Row]]] = {}
    sizes: dict[_Shape, int] = {}
    order: list[tuple[_Shape, int]] = []  # (shape, chunk index) in order of each chunk's first row
    for row in rows:
        shape = (row.kind, row.fields)
        chunks = groups.get(shape)
        if chunks is None:
            chunks = groups[shape] = [[]]
            order.append((shape, 0))
            sizes[shape] = ENVELOPE_OVERHEAD
        size = len(row.body) + ROW_OVERHEAD
        if len(chunks[-1]) >= max_records or (chunks[-1] and sizes[shape] + size > max_bytes):
            chunks.append([])
            order.append((shape, len(chunks) - 1))
            sizes[shape] = ENVELOPE_OVERHEAD
        chunks[-1].append(row)
        sizes[shape] += size
    return [message(groups[shape][i], device=device, sent_ns=sent_ns) for shape, i in order]


def message(rows: Sequence[Row], *, device: str, sent_ns: int) -> Message:
    """One message of `rows` (all of one kind and shape), in their order."""
    kind, fields = rows[0].kind, rows[0].fields
    if any(r.kind != kind or r.fields != fields for r in rows):
        raise ValueError("one message carries rows of one kind and one shape")
    payload = _encode_v2(device, kind, rows, sent_ns) if fields is None else \
        _encode(device, kind, fields, rows, sent_ns)
    return Message(kind, tuple(rows), payload)


def _encode(device: str, kind: str, fields: tuple[str, ...], rows: Sequence[Row],
            sent_ns: int) -> bytes:
    head = wire.pack(device, kind, sent_ns, fields, [])
    assert head.endswith(b"\x90")  # "records": [] comes last; splice the real array in its place
    packer = msgpack.Packer(use_bin_type=True)
    parts = [head[:-1], packer.pack_array_header(len(rows))]
    for r in rows:
        count, header_len = _array_header(r.body)
        # [seq, *values]: the stored array, one item longer, without unpacking it
        parts += (packer.pack_array_header(count + 1), packer.pack(r.seq), r.body[header_len:])
    return b"".join(parts)


def _encode_v2(device: str, kind: str, rows: Sequence[Row], sent_ns: int) -> bytes:
    head = wire.pack_v2(device, kind, sent_ns, [])
    assert head.endswith(b"\x90")
    packer = msgpack.Packer(use_bin_type=True)
    parts = [head[:-1], packer.pack_array_header(len(rows))]
    seq_key = packer.pack("seq")
    for r in rows:
        count, header_len = _map_header(r.body)
        # {"seq": n, **record}: the stored record map, one key longer, without unpacking it
        parts += (packer.pack_map_header(count + 1), seq_key, packer.pack(r.seq),
                  r.body[header_len:])
    return b"".join(parts)


def is_record_body(body: bytes, fields: tuple[str, ...] | None = None) -> bool:
    """Whether a stored body can be spliced into a message: an array of one value per name in
    `fields`, or (`fields` None, a row stored before wire version 3) a map; whole header."""
    try:
        if fields is None:
            _, header_len = _map_header(body)
        else:
            count, header_len = _array_header(body)
            if count != len(fields):
                return False
    except (ValueError, IndexError):  # not that type; empty
        return False
    return len(body) >= header_len


def _array_header(body: bytes) -> tuple[int, int]:
    """(items, header length) of the msgpack array `body` starts with."""
    return _header(body, 0x90, 0xDC, "array")


def _map_header(body: bytes) -> tuple[int, int]:
    """(entries, header length) of the msgpack map `body` starts with."""
    return _header(body, 0x80, 0xDE, "map")


def _header(body: bytes, fix: int, wide: int, what: str) -> tuple[int, int]:
    first = body[0]
    if fix <= first <= fix + 0x0F:  # fixarray / fixmap: the count is in the low nibble
        return first & 0x0F, 1
    if first == wide:  # array16 / map16
        return int.from_bytes(body[1:3], "big"), 3
    if first == wide + 1:  # array32 / map32
        return int.from_bytes(body[1:5], "big"), 5
    raise ValueError(f"outbox row body is not a msgpack {what} (first byte {first:#x})")
