"""Packet 3, Event (45 bytes in 2023–2026): a 4-letter code and a 12-byte union of details.

Each code's union member is a small struct; its fields become `details` with snake_case keys.
Union bytes the member does not use are kept in `spare` so encode(decode(x)) == x. The codes
and members differ by format: SCAR and COLL are new in 2024; 2025 adds a reason to RTMT and
DRSD and the stop time to SGSV; 2026 adds a severity to COLL. A code the format does not
define is `MalformedPacket("bad_event_code")`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from gateway.decode.f1.header import HEADER_SIZE, Header
from gateway.decode.f1.header import encode as encode_header
from gateway.errors import MalformedPacket

PACKET_ID = 3
UNION_SIZE = 12
SIZE = HEADER_SIZE + 4 + UNION_SIZE  # 45
_UNION_AT = HEADER_SIZE + 4

Member = tuple[str, tuple[str, ...]]  # (struct format of the union member, detail keys)
_VEHICLE: Member = ("<B", ("vehicle_idx",))
_NONE: Member = ("<", ())

_2023: dict[str, Member] = {
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
}
_2024 = {**_2023,
         "SCAR": ("<BB", ("safety_car_type", "event_type")),
         "COLL": ("<BB", ("vehicle1_idx", "vehicle2_idx"))}
_2025 = {**_2024,
         "RTMT": ("<BB", ("vehicle_idx", "reason")),
         "DRSD": ("<B", ("reason",)),
         "SGSV": ("<Bf", ("vehicle_idx", "stop_time_s"))}
_2026 = {**_2025, "COLL": ("<BBB", ("vehicle1_idx", "vehicle2_idx", "severity"))}
MEMBERS: dict[int, dict[str, Member]] = {2023: _2023, 2024: _2024, 2025: _2025, 2026: _2026}
"""Union member per event code, per packet format."""
EVENT_CODES = frozenset(_2026)
"""Every code of any format."""


class EventPacket(NamedTuple):
    """`code` e.g. "FTLP"; `details` per EA's union member (FTLP: vehicle_idx, lap_time_s;
    empty for SSTA/SEND/CHQF/…). `spare`: the union's unused bytes, kept for exact re-encoding
    (b"" encodes as zeros)."""

    code: str
    details: dict[str, int | float]
    spare: bytes = b""


Codec = tuple[Callable[[Header, bytes], EventPacket], Callable[[Header, EventPacket], bytes]]


def codec(packet_format: int) -> Codec:
    """(decode, encode) for one format's event codes."""
    structs = {code: (struct.Struct(fmt), keys)
               for code, (fmt, keys) in MEMBERS[packet_format].items()}

    def decode(header: Header, data: bytes) -> EventPacket:
        """`data` is the whole datagram, its length already checked against SIZE."""
        raw_code = data[HEADER_SIZE:_UNION_AT]
        code = raw_code.decode("ascii", "replace")
        layout = structs.get(code)
        if layout is None:
            raise MalformedPacket("bad_event_code", f"{packet_format}: {raw_code!r}")
        member, keys = layout
        values = member.unpack_from(data, _UNION_AT)
        return EventPacket(code, dict(zip(keys, values)), data[_UNION_AT + member.size:SIZE])

    def encode(header: Header, body: EventPacket) -> bytes:
        layout = structs.get(body.code)
        if layout is None:
            raise MalformedPacket("bad_event_code", f"{packet_format}: {body.code!r}")
        member, keys = layout
        union = member.pack(*(body.details.get(k, 0) for k in keys)) + body.spare
        union = union[:UNION_SIZE].ljust(UNION_SIZE, b"\0")
        return encode_header(header) + body.code.encode("ascii") + union

    return decode, encode
