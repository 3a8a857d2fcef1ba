"""Packet 4, Participants, sent every 5 s: who drives which car.

Sizes: 1306 (2023: 22 × 59), 1350 (2024: 22 × 60, tech level), 1284 (2025: 22 × 58; names
cut from 48 to 32 bytes, livery colours), 1470 (2026: 24 × 61; driver, network and team ids
widened to u16).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 4


class LiveryColour(NamedTuple):
    red: int
    green: int
    blue: int


class Participant(NamedTuple):
    """One car's driver. your_telemetry: 0 restricted, 1 public (see the restricted-telemetry
    note in f1-udp.md). platform: 1 Steam, 3 PlayStation, 4 Xbox, 6 Origin, 255 unknown.
    `tech_level` from 2024 on; `num_colours`/`livery_colours` from 2025 on."""

    ai_controlled: int
    driver_id: int
    network_id: int
    team_id: int
    my_team: int
    race_number: int
    nationality: int
    name: str
    your_telemetry: int
    show_online_names: int
    platform: int
    tech_level: int = 0
    num_colours: int = 0
    livery_colours: tuple[LiveryColour, ...] = ()


class ParticipantsPacket(NamedTuple):
    """`num_active_cars` of the slots are in use."""

    num_active_cars: int
    cars: tuple[Participant, ...]


_COLOUR = Layout(LiveryColour, "red:B green:B blue:B")
_IDS_U8 = "ai_controlled:B driver_id:B network_id:B team_id:B"
_IDS_U16 = "ai_controlled:B driver_id:H network_id:H team_id:H"
_MID = "my_team:B race_number:B nationality:B"
_FLAGS = "your_telemetry:B show_online_names:B"


def _packet(num_cars: int, *car: str | tuple[str, Layout, int]) -> Layout:
    return Layout(ParticipantsPacket, "num_active_cars:B",
                  ("cars", Layout(Participant, *car), num_cars))


_COLOURS = ("livery_colours", _COLOUR, 4)
LAYOUTS = {
    2023: _packet(22, _IDS_U8, _MID, "name:48s", _FLAGS, "platform:B"),
    2024: _packet(22, _IDS_U8, _MID, "name:48s", _FLAGS, "tech_level:H platform:B"),
    2025: _packet(22, _IDS_U8, _MID, "name:32s", _FLAGS, "tech_level:H platform:B",
                  "num_colours:B", _COLOURS),
    2026: _packet(24, _IDS_U16, _MID, "name:32s", _FLAGS, "tech_level:H platform:B",
                  "num_colours:B", _COLOURS),
}
"""Wire layout per packet format."""
