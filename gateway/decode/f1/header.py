"""The 29-byte header every F1 UDP packet starts with (formats 2023–2026 share it).

Pure: bytes in, a `Header` out. The caller has already checked the length.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER = struct.Struct("<HBBBBBQfIIBB")
HEADER_SIZE = HEADER.size  # 29


class Header(NamedTuple):
    """EA's PacketHeader. `session_time_s` is seconds since the session started (it rewinds on
    a flashback or save reload); `overall_frame_id` never rewinds. Car indices are 255 when
    spectating / when there is no split-screen player."""

    packet_format: int
    game_year: int
    game_major: int
    game_minor: int
    packet_version: int
    packet_id: int
    session_uid: int
    session_time_s: float
    frame_id: int
    overall_frame_id: int
    player_car_idx: int
    secondary_player_car_idx: int


def decode(data: bytes) -> Header:
    """Read the header from the first 29 bytes of `data` (len(data) >= 29 is the caller's job)."""
    return Header._make(HEADER.unpack_from(data))


def encode(header: Header) -> bytes:
    return HEADER.pack(*header)
