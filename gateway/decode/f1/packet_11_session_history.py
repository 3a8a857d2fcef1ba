"""Packet 11, Session History, sent 20/s cycling through the cars: one car's laps (up to 100)
and tyre stints (up to 8). 1460 bytes in every format. The fallback for a last lap time that
a 20 Hz Lap Data stream missed.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 11
NUM_LAPS, NUM_STINTS = 100, 8


class LapHistory(NamedTuple):
    """One lap: times in ms (minute parts folded in). lap_valid_bit_flags: 0x01 lap, 0x02
    sector 1, 0x04 sector 2, 0x08 sector 3 valid."""

    lap_time_ms: int
    sector1_ms: int
    sector2_ms: int
    sector3_ms: int
    lap_valid_bit_flags: int


class TyreStint(NamedTuple):
    """end_lap 255 = the current stint."""

    end_lap: int
    actual_compound: int
    visual_compound: int


class SessionHistoryPacket(NamedTuple):
    """The first `num_laps` of `laps` and `num_tyre_stints` of `tyre_stints` are used."""

    car_idx: int
    num_laps: int
    num_tyre_stints: int
    best_lap_time_lap_num: int
    best_sector1_lap_num: int
    best_sector2_lap_num: int
    best_sector3_lap_num: int
    laps: tuple[LapHistory, ...]
    tyre_stints: tuple[TyreStint, ...]


_LAP = Layout(LapHistory, "lap_time_ms:I sector1_ms:ms sector2_ms:ms sector3_ms:ms "
              "lap_valid_bit_flags:B")
_STINT = Layout(TyreStint, "end_lap:B actual_compound:B visual_compound:B")
_PACKET = Layout(SessionHistoryPacket,
                 "car_idx:B num_laps:B num_tyre_stints:B best_lap_time_lap_num:B "
                 "best_sector1_lap_num:B best_sector2_lap_num:B best_sector3_lap_num:B",
                 ("laps", _LAP, NUM_LAPS), ("tyre_stints", _STINT, NUM_STINTS))
LAYOUTS = {2023: _PACKET, 2024: _PACKET, 2025: _PACKET, 2026: _PACKET}
"""Wire layout per packet format (unchanged since 2023)."""
