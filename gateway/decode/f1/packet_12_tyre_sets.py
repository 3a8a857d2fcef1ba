"""Packet 12, Tyre Sets, sent 20/s cycling through the cars: one car's 20 tyre sets (13 dry,
7 wet). 231 bytes in every format. Restricted telemetry zeroes it for other players.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 12
NUM_SETS = 20


class TyreSet(NamedTuple):
    """wear_pct 0–100; life_span/usable_life in laps; lap_delta_time_ms vs the fitted set."""

    actual_tyre_compound: int
    visual_tyre_compound: int
    wear_pct: int
    available: int
    recommended_session: int
    life_span_laps: int
    usable_life_laps: int
    lap_delta_time_ms: int
    fitted: int


class TyreSetsPacket(NamedTuple):
    car_idx: int
    sets: tuple[TyreSet, ...]
    fitted_idx: int


_SET = Layout(TyreSet, "actual_tyre_compound:B visual_tyre_compound:B wear_pct:B available:B "
              "recommended_session:B life_span_laps:B usable_life_laps:B lap_delta_time_ms:h "
              "fitted:B")
_PACKET = Layout(TyreSetsPacket, "car_idx:B", ("sets", _SET, NUM_SETS), "fitted_idx:B")
LAYOUTS = {2023: _PACKET, 2024: _PACKET, 2025: _PACKET, 2026: _PACKET}
"""Wire layout per packet format (unchanged since 2023)."""
