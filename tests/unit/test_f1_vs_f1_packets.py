"""Our format-2025 layouts against an independent one: the `f1-packets` package (2025 release,
ctypes structures generated from EA's spec; the `bench` extra installs it). For every packet id
of format 2025, the same bytes must give the same values in the same wire order, which checks
every field's offset and type, including packets no public capture has (8, 9, 14, 15)."""

from __future__ import annotations

import ctypes
import math
import random
import struct
from typing import Any

import pytest

from gateway.decode.f1 import LAYOUTS, encode_packet
from gateway.decode.f1.header import HEADER, Header
from tests.unit.test_f1_decode import random_record

packets = pytest.importorskip("f1.packets", reason="f1-packets not installed (pip install -e "
                              "'.[bench]'): cross-check against it skipped")


def leaves(value: Any, out: list[Any]) -> None:
    if isinstance(value, ctypes.Array):
        if value._type_ is ctypes.c_char:
            out.append(bytes(value))
            return
        for item in value:
            leaves(item, out)
    elif isinstance(value, ctypes.Structure | ctypes.Union):
        for name, _ in value._fields_:
            leaves(getattr(value, name), out)
    else:
        out.append(value)


@pytest.mark.parametrize("packet_id", sorted(pid for fmt, pid in LAYOUTS if fmt == 2025))
@pytest.mark.parametrize("seed", range(3))
def test_our_2025_layout_reads_what_f1_packets_reads(packet_id: int, seed: int) -> None:
    layout = LAYOUTS[(2025, packet_id)]
    body = random_record(random.Random(f"{packet_id}/{seed}"), layout)
    datagram = encode_packet(Header(2025, 25, 1, 1, 1, packet_id, 7, 1.5, 3, 3, 0, 255), body)
    ours = list(struct.unpack_from("<" + layout.fmt, datagram, HEADER.size))
    parsed = packets.resolve(datagram)
    theirs: list[Any] = []
    for name, _ in type(parsed)._fields_[1:]:  # after the header
        leaves(getattr(parsed, name), theirs)
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(a, bytes):
            a = a.split(b"\0", 1)[0]
        same = a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=1e-7))
        assert same, (i, a, b)
