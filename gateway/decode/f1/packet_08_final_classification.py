"""Packet 8, Final Classification, sent at the end of a race (and again every 5 s on the
results screen).

Sizes: 1020 (2023, 2024: 22 × 45 + 1), 1042 (2025: 22 × 46, result reason), 1134 (2026: 24).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 8


class FinalClassification(NamedTuple):
    """One car's result. Times: best lap in ms, total race time in s (without penalties),
    penalties in s. Tyre stints: actual and visual compounds and the lap each stint ended.
    `result_reason` from 2025 on."""

    position: int
    num_laps: int
    grid_position: int
    points: int
    num_pit_stops: int
    result_status: int
    best_lap_time_ms: int
    total_race_time_s: float
    penalties_time_s: int
    num_penalties: int
    num_tyre_stints: int
    tyre_stints_actual: tuple[int, ...]
    tyre_stints_visual: tuple[int, ...]
    tyre_stints_end_laps: tuple[int, ...]
    result_reason: int = 0


class FinalClassificationPacket(NamedTuple):
    num_cars: int
    cars: tuple[FinalClassification, ...]


_HEAD = ("position:B num_laps:B grid_position:B points:B num_pit_stops:B result_status:B")
_TAIL = ("best_lap_time_ms:I total_race_time_s:d penalties_time_s:B num_penalties:B "
         "num_tyre_stints:B tyre_stints_actual:8B tyre_stints_visual:8B "
         "tyre_stints_end_laps:8B")
_OLD = Layout(FinalClassification, _HEAD, _TAIL)
_NEW = Layout(FinalClassification, _HEAD, "result_reason:B", _TAIL)
LAYOUTS = {
    2023: Layout(FinalClassificationPacket, "num_cars:B", ("cars", _OLD, 22)),
    2024: Layout(FinalClassificationPacket, "num_cars:B", ("cars", _OLD, 22)),
    2025: Layout(FinalClassificationPacket, "num_cars:B", ("cars", _NEW, 22)),
    2026: Layout(FinalClassificationPacket, "num_cars:B", ("cars", _NEW, 24)),
}
"""Wire layout per packet format."""
