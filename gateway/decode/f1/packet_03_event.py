"""Packet 3, Event (45 bytes in 2023–2026): a 4-letter code and a 12-byte union of details.

Each code's union member is a small struct; its fields become `details` with snake_case keys.
Union bytes the member does not use are kept in `spare` so encode(decode(x)) == x.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gateway.decode.f1.header import HEADER_SIZE, Header
from gateway.decode.f1.header import encode as encode_header
from gateway.errors import MalformedPacket

UNION_SIZE = 12
SIZE = HEADER_SIZE + 4 + UNION_SIZE  # 45
_UNION_AT = HEADER_SIZE + 4

_VEHICLE = ("<B", ("vehicle_idx",))
_NONE = ("<", ())

# code -> (struct format of its union member, detail keys in order). Format 2024.
_LAYOUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SSTA": _NONE,  # session started
    "SEND": _NONE,  # session ended
    "FTLP": ("<Bf", ("vehicle_idx", "lap_time_s")),  # fastest lap
    "RTMT": _VEHICLE,  # retirement
    "DRSE": _NONE,  # DRS enabled
    "DRSD": _NONE,  # DRS disabled
    "TMPT": _VEHICLE,  # team mate in pits
    "CHQF": _NONE,  # chequered flag
    "RCWN": _VEHICLE,  # race winner
    "PENA": ("<7B", ("penalty_type", "infringement_type", "vehicle_idx", "other_vehicle_idx",
                     "time_s", "lap_num", "places_gained")),
    "SPTP": ("<BfBBBf", ("vehicle_idx", "speed_kph", "is_overall_fastest_in_session",
                         "is_driver_fastest_in_session", "fastest_vehicle_idx_in_session",
                         "fastest_speed_in_session_kph")),
    "STLG": ("<B", ("num_lights",)),  # start lights
    "LGOT": _NONE,  # lights out
    "DTSV": _VEHICLE,  # drive-through served
    "SGSV": _VEHICLE,  # stop-go served
    "FLBK": ("<If", ("flashback_frame_id", "flashback_session_time_s")),
    "BUTN": ("<I", ("button_status",)),  # bit flags, EA's appendix
    "RDFL": _NONE,  # red flag
    "OVTK": ("<BB", ("overtaking_vehicle_idx", "being_overtaken_vehicle_idx")),
    "SCAR": ("<BB", ("safety_car_type", "event_type")),
    "COLL": ("<BB", ("vehicle1_idx", "vehicle2_idx")),
}
_STRUCTS: dict[str, tuple[struct.Struct, tuple[str, ...]]] = {
    code: (struct.Struct(fmt), keys) for code, (fmt, keys) in _LAYOUTS.items()}
EVENT_CODES = frozenset(_LAYOUTS)


class EventPacket(NamedTuple):
    """`code` e.g. "FTLP"; `details` per EA's union member (FTLP: vehicle_idx, lap_time_s;
    empty for SSTA/SEND/CHQF/…). `spare`: the union's unused bytes, kept for exact re-encoding
    (b"" encodes as zeros)."""

    code: str
    details: dict[str, int | float]
    spare: bytes = b""


def decode(header: Header, data: bytes) -> EventPacket:
    """`data` is the whole datagram, its length already checked against SIZE."""
    raw_code = data[HEADER_SIZE:_UNION_AT]
    code = raw_code.decode("ascii", "replace")
    layout = _STRUCTS.get(code)
    if layout is None:
        raise MalformedPacket("bad_event_code", repr(raw_code))
    member, keys = layout
    values = member.unpack_from(data, _UNION_AT)
    spare = data[_UNION_AT + member.size:SIZE]
    return EventPacket(code, dict(zip(keys, values)), spare)


def encode(header: Header, body: EventPacket) -> bytes:
    layout = _STRUCTS.get(body.code)
    if layout is None:
        raise MalformedPacket("bad_event_code", repr(body.code))
    member, keys = layout
    union = member.pack(*(body.details[k] for k in keys)) + body.spare
    union = union[:UNION_SIZE].ljust(UNION_SIZE, b"\0")
    return encode_header(header) + body.code.encode("ascii") + union
