"""Decode (and encode) EA F1 UDP datagrams of formats 2023, 2024, 2025 and 2026. Pure: bytes
in, NamedTuples out; no I/O, no clock.

`decode_packet` picks the layout by (packet_format, packet_id), never by game_year, checks the
length against SIZES and raises `MalformedPacket(reason)` for anything it cannot decode:
short_header, unknown_format, unknown_packet_id, bad_length, bad_event_code. (not_decoded,
a known packet without a decoder, no longer happens; the reason stays for the counters.)
The capture loop counts by reason and drops.

One module per packet id, each with its NamedTuples and a `LAYOUTS` table (packet format →
`Layout`, see layout.py); adding a format is adding its rows there and its sizes to SIZES.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from gateway.decode.f1 import (
    packet_00_motion,
    packet_01_session,
    packet_02_lap_data,
    packet_03_event,
    packet_04_participants,
    packet_05_car_setups,
    packet_06_car_telemetry,
    packet_07_car_status,
    packet_08_final_classification,
    packet_09_lobby_info,
    packet_10_car_damage,
    packet_11_session_history,
    packet_12_tyre_sets,
    packet_13_motion_ex,
    packet_14_time_trial,
    packet_15_lap_positions,
    packet_16_car_telemetry_2,
)
from gateway.decode.f1.header import HEADER, HEADER_SIZE, Header
from gateway.decode.f1.layout import Layout
from gateway.decode.f1.packet_00_motion import CarMotion, MotionPacket
from gateway.decode.f1.packet_01_session import SessionData
from gateway.decode.f1.packet_02_lap_data import LapData, LapDataPacket
from gateway.decode.f1.packet_03_event import EventPacket
from gateway.decode.f1.packet_04_participants import Participant, ParticipantsPacket
from gateway.decode.f1.packet_05_car_setups import CarSetup, CarSetupsPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetry, CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import CarStatus, CarStatusPacket
from gateway.decode.f1.packet_08_final_classification import (
    FinalClassification,
    FinalClassificationPacket,
)
from gateway.decode.f1.packet_09_lobby_info import LobbyInfoPacket, LobbyPlayer
from gateway.decode.f1.packet_10_car_damage import CarDamage, CarDamagePacket
from gateway.decode.f1.packet_11_session_history import SessionHistoryPacket
from gateway.decode.f1.packet_12_tyre_sets import TyreSetsPacket
from gateway.decode.f1.packet_13_motion_ex import MotionEx
from gateway.decode.f1.packet_14_time_trial import TimeTrialPacket
from gateway.decode.f1.packet_15_lap_positions import LapPositionsPacket
from gateway.decode.f1.packet_16_car_telemetry_2 import CarTelemetry2, CarTelemetry2Packet
from gateway.errors import MalformedPacket

__all__ = [
    "CODECS", "FORMATS", "LAYOUTS", "NUM_CARS", "SIZES", "Body", "CarDamage", "CarDamagePacket",
    "CarMotion", "CarSetup", "CarSetupsPacket", "CarStatus", "CarStatusPacket", "CarTelemetry",
    "CarTelemetry2", "CarTelemetry2Packet", "CarTelemetryPacket", "EventPacket", "F1Packet",
    "FinalClassification", "FinalClassificationPacket", "Header", "LapData", "LapDataPacket",
    "LapPositionsPacket", "LobbyInfoPacket", "LobbyPlayer", "MotionEx", "MotionPacket",
    "Participant", "ParticipantsPacket", "SessionData", "SessionHistoryPacket",
    "TimeTrialPacket", "TyreSetsPacket", "check_header", "decode_packet", "encode_packet",
]

Body = (MotionPacket | SessionData | LapDataPacket | EventPacket | ParticipantsPacket
        | CarSetupsPacket | CarTelemetryPacket | CarStatusPacket | FinalClassificationPacket
        | LobbyInfoPacket | CarDamagePacket | SessionHistoryPacket | TyreSetsPacket | MotionEx
        | TimeTrialPacket | LapPositionsPacket | CarTelemetry2Packet)


class F1Packet(NamedTuple):
    header: Header
    body: Body


FORMATS = (2023, 2024, 2025, 2026)
NUM_CARS = {2023: 22, 2024: 22, 2025: 22, 2026: 24}
"""Cars per array, per packet format."""

# EA's documented sizes (header included), per packet id 0, 1, 2, …; f1-udp.md has the table.
_DOCUMENTED = {
    2023: (1349, 644, 1131, 45, 1306, 1107, 1352, 1239, 1020, 1218, 953, 1460, 231, 217),
    2024: (1349, 753, 1285, 45, 1350, 1133, 1352, 1239, 1020, 1306, 953, 1460, 231, 237, 101),
    2025: (1349, 753, 1285, 45, 1284, 1133, 1352, 1239, 1042, 954, 1041, 1460, 231, 273, 101,
           1131),
    2026: (1325, 926, 1399, 45, 1470, 1233, 1448, 1445, 1134, 1062, 1133, 1460, 231, 273, 104,
           1231, 269),
}
SIZES: dict[tuple[int, int], int] = {
    (fmt, pid): size for fmt, sizes in _DOCUMENTED.items() for pid, size in enumerate(sizes)}
"""Exact datagram size, header included, per (packet_format, packet_id)."""

_MODULES = (packet_00_motion, packet_01_session, packet_02_lap_data, packet_04_participants,
            packet_05_car_setups, packet_06_car_telemetry, packet_07_car_status,
            packet_08_final_classification, packet_09_lobby_info, packet_10_car_damage,
            packet_11_session_history, packet_12_tyre_sets, packet_13_motion_ex,
            packet_14_time_trial, packet_15_lap_positions, packet_16_car_telemetry_2)
LAYOUTS: dict[tuple[int, int], Layout] = {
    (fmt, module.PACKET_ID): layout for module in _MODULES
    for fmt, layout in module.LAYOUTS.items()}
"""Body layout per (packet_format, packet_id); every id but the event (its union is code
dependent, see packet_03_event)."""

Decoder = Callable[[Header, bytes], Any]
Encoder = Callable[[Header, Any], bytes]


_BODY_DECODERS: dict[tuple[int, int], Callable[[bytes, int], Any]] = {}
"""The hot path's table: (datagram, offset of the body) → body, per (format, id)."""


def _codec(key: tuple[int, int], layout: Layout) -> tuple[Decoder, Encoder]:
    body_decoder, body_encoder = layout.decoder(), layout.encoder()
    _BODY_DECODERS[key] = body_decoder

    def decode(header: Header, data: bytes) -> Any:
        return body_decoder(data, HEADER_SIZE)

    def encode(header: Header, body: Any) -> bytes:
        return HEADER.pack(*header) + body_encoder(body)

    return decode, encode


def _event_codec(fmt: int) -> tuple[Decoder, Encoder]:
    decode, encode = packet_03_event.codec(fmt)
    _BODY_DECODERS[(fmt, packet_03_event.PACKET_ID)] = lambda data, _offset: decode(_NO_HEADER,
                                                                                     data)
    return decode, encode


_NO_HEADER = Header(0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0)  # event decoding reads no header
CODECS: dict[tuple[int, int], tuple[Decoder, Encoder]] = {
    key: _codec(key, layout) for key, layout in LAYOUTS.items()}
CODECS.update({(fmt, packet_03_event.PACKET_ID): _event_codec(fmt) for fmt in FORMATS})
"""(decode, encode) per (packet_format, packet_id)."""
_unpack_header = HEADER.unpack_from
_new = tuple.__new__


def decode_packet(datagram: bytes) -> F1Packet:
    """One UDP payload → F1Packet. Raises MalformedPacket (only) for anything undecodable."""
    header = check_header(datagram)
    key = (header.packet_format, header.packet_id)
    return _new(F1Packet, (header, _BODY_DECODERS[key](datagram, HEADER_SIZE)))


def check_header(datagram: bytes) -> Header:
    """The header, once the datagram's length is right for its (format, id); MalformedPacket
    otherwise. Lets the capture path skip decoding bodies nobody reads (Motion at 60 Hz)."""
    if len(datagram) < HEADER_SIZE:
        raise MalformedPacket("short_header", f"{len(datagram)} bytes")
    header = _new(Header, _unpack_header(datagram))
    key = (header.packet_format, header.packet_id)
    size = SIZES.get(key)
    if size is None:
        if header.packet_format not in NUM_CARS:
            raise MalformedPacket("unknown_format", str(header.packet_format))
        raise MalformedPacket("unknown_packet_id", f"{key}")
    if len(datagram) != size:
        raise MalformedPacket("bad_length", f"{key}: {len(datagram)} bytes, expected {size}")
    return header


def encode_packet(header: Header, body: Body) -> bytes:
    """The exact inverse of decode_packet: the layout is chosen by the header's (format, id).
    Short per-car tuples are padded with empty slots."""
    codec = CODECS.get((header.packet_format, header.packet_id))
    if codec is None:
        raise MalformedPacket("unknown_packet_id",
                              f"({header.packet_format}, {header.packet_id})")
    return codec[1](header, body)
