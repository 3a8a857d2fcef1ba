"""Packet 15, Lap Positions, sent 1/s (format 2025 on): every car's position at the start of
each lap, 50 laps per packet (a second packet with lap_start 50 past lap 50).
Sizes: 1131 (2025: 50 × 22), 1231 (2026: 50 × 24).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 15
LAPS_PER_PACKET = 50


class LapPositionsPacket(NamedTuple):
    """positions[lap - lap_start][vehicle_idx] = position (0 = no data); the first
    `num_laps` rows are used."""

    num_laps: int
    lap_start: int
    positions: tuple[tuple[int, ...], ...]


LAYOUTS = {
    2025: Layout(LapPositionsPacket, "num_laps:B lap_start:B positions:50x22B"),
    2026: Layout(LapPositionsPacket, "num_laps:B lap_start:B positions:50x24B"),
}
"""Wire layout per packet format (none before 2025)."""
