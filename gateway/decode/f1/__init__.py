"""Decode (and encode) EA F1 UDP datagrams. Pure: bytes in, NamedTuples out; no I/O, no clock.

`decode_packet` picks the layout by (packet_format, packet_id), never by game_year, checks the
length against SIZES and raises `MalformedPacket(reason)` for anything it cannot decode:
short_header, unknown_format, unknown_packet_id, bad_length, not_decoded (a valid packet whose
decoder is not written yet), bad_event_code. The capture loop counts by reason and drops.

Adding a format is data: its sizes in SIZES and its (decode, encode) pairs in CODECS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from gateway.decode.f1 import (
    packet_01_session,
    packet_02_lap_data,
    packet_03_event,
    packet_06_car_telemetry,
    packet_07_car_status,
)
from gateway.decode.f1.header import HEADER, HEADER_SIZE, Header
from gateway.decode.f1.packet_01_session import SessionData
from gateway.decode.f1.packet_02_lap_data import LapData, LapDataPacket
from gateway.decode.f1.packet_03_event import EventPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetry, CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import CarStatus, CarStatusPacket
from gateway.errors import MalformedPacket

__all__ = [
    "CODECS", "SIZES", "CarStatus", "CarStatusPacket", "CarTelemetry", "CarTelemetryPacket",
    "EventPacket", "F1Packet", "Header", "LapData", "LapDataPacket", "SessionData",
    "decode_packet", "encode_packet",
]

Body = SessionData | LapDataPacket | EventPacket | CarTelemetryPacket | CarStatusPacket


class F1Packet(NamedTuple):
    header: Header
    body: Body


_SIZES_2024 = (1349, 753, 1285, 45, 1350, 1133, 1352, 1239, 1020, 1306, 953, 1460, 231, 237,
               101)
SIZES: dict[tuple[int, int], int] = {(2024, pid): size for pid, size in enumerate(_SIZES_2024)}
"""Exact datagram size, header included, per (packet_format, packet_id)."""

KNOWN_FORMATS = frozenset(fmt for fmt, _ in SIZES)

Decoder = Callable[[Header, bytes], Any]
Encoder = Callable[[Header, Any], bytes]
CODECS: dict[tuple[int, int], tuple[Decoder, Encoder]] = {
    (2024, 1): (packet_01_session.decode, packet_01_session.encode),
    (2024, 2): (packet_02_lap_data.decode, packet_02_lap_data.encode),
    (2024, 3): (packet_03_event.decode, packet_03_event.encode),
    (2024, 6): (packet_06_car_telemetry.decode, packet_06_car_telemetry.encode),
    (2024, 7): (packet_07_car_status.decode, packet_07_car_status.encode),
}
"""(decode, encode) per (packet_format, packet_id); a key in SIZES but not here is not_decoded."""


def decode_packet(datagram: bytes) -> F1Packet:
    """One UDP payload → F1Packet. Raises MalformedPacket (only) for anything undecodable."""
    if len(datagram) < HEADER_SIZE:
        raise MalformedPacket("short_header", f"{len(datagram)} bytes")
    header = Header._make(HEADER.unpack_from(datagram))
    key = (header.packet_format, header.packet_id)
    size = SIZES.get(key)
    if size is None:
        if header.packet_format not in KNOWN_FORMATS:
            raise MalformedPacket("unknown_format", str(header.packet_format))
        raise MalformedPacket("unknown_packet_id", f"{key}")
    if len(datagram) != size:
        raise MalformedPacket("bad_length", f"{key}: {len(datagram)} bytes, expected {size}")
    codec = CODECS.get(key)
    if codec is None:
        raise MalformedPacket("not_decoded", f"{key}")
    return F1Packet(header, codec[0](header, datagram))


def encode_packet(header: Header, body: Body) -> bytes:
    """The exact inverse of decode_packet: the layout is chosen by the header's (format, id)."""
    codec = CODECS.get((header.packet_format, header.packet_id))
    if codec is None:
        raise MalformedPacket("not_decoded", f"({header.packet_format}, {header.packet_id})")
    return codec[1](header, body)
