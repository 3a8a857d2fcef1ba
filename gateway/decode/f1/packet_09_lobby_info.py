"""Packet 9, Lobby Info, sent 2/s while in a multiplayer lobby.

Sizes: 1218 (2023: 22 × 55 + 1), 1306 (2024: 22 × 59 + 1), 954 (2025: names cut to 32
bytes), 1062 (2026: 24 players, team id u16).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 9


class LobbyPlayer(NamedTuple):
    """One lobby slot. ready_status: 0 not ready, 1 ready, 2 spectating. `your_telemetry`,
    `show_online_names` and `tech_level` from 2024 on."""

    ai_controlled: int
    team_id: int
    nationality: int
    platform: int
    name: str
    car_number: int
    ready_status: int
    your_telemetry: int = 0
    show_online_names: int = 0
    tech_level: int = 0


class LobbyInfoPacket(NamedTuple):
    num_players: int
    players: tuple[LobbyPlayer, ...]


_FLAGS = "your_telemetry:B show_online_names:B tech_level:H"


def _packet(num_cars: int, team: str, name: str, flags: str) -> Layout:
    player = Layout(LobbyPlayer, f"ai_controlled:B team_id:{team} nationality:B platform:B "
                    f"name:{name} car_number:B {flags} ready_status:B")
    return Layout(LobbyInfoPacket, "num_players:B", ("players", player, num_cars))


LAYOUTS = {
    2023: _packet(22, "B", "48s", ""),
    2024: _packet(22, "B", "48s", _FLAGS),
    2025: _packet(22, "B", "32s", _FLAGS),
    2026: _packet(24, "H", "32s", _FLAGS),
}
"""Wire layout per packet format."""
