"""Packet 2, Lap Data, sent at the menu rate: every car's lap, sector, gaps and pit state.

Sizes: 1131 (2023: 22 × 50 + 2), 1285 (2024, 2025: 22 × 57 + 2), 1399 (2026: 24 × 57 + 2).
EA sends sector times (and, from 2024, the gaps) as a milliseconds part (u16) plus a minutes
part (u8); they are folded into one `*_ms` int here and split again on encode.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout, Part, with_cars

PACKET_ID = 2


class LapData(NamedTuple):
    """One car's lap state. Times in ms (minute parts folded in), distances in metres (negative
    before the line is first crossed). pit_status: 0 none, 1 pitting, 2 in the pit area.
    result_status: 0 invalid, 1 inactive (both = empty slot), 2 active, 3 finished, ...
    The speed trap fields are not sent in format 2023 (0.0 and 255 there)."""

    last_lap_time_ms: int
    current_lap_time_ms: int
    sector1_ms: int
    sector2_ms: int
    delta_to_car_in_front_ms: int
    delta_to_leader_ms: int
    lap_distance_m: float
    total_distance_m: float
    safety_car_delta_s: float
    car_position: int
    current_lap_num: int
    pit_status: int
    num_pit_stops: int
    sector: int
    current_lap_invalid: bool
    penalties_s: int
    total_warnings: int
    corner_cutting_warnings: int
    num_unserved_drive_through_pens: int
    num_unserved_stop_go_pens: int
    grid_position: int
    driver_status: int
    result_status: int
    pit_lane_timer_active: bool
    pit_lane_time_in_lane_ms: int
    pit_stop_timer_ms: int
    pit_stop_should_serve_pen: int
    speed_trap_fastest_speed_kph: float = 0.0
    speed_trap_fastest_lap: int = 255


class LapDataPacket(NamedTuple):
    """Every slot (22, or 24 in 2026), indexed by vehicle index (the player's is
    `header.player_car_idx`)."""

    cars: tuple[LapData, ...]
    time_trial_pb_car_idx: int
    time_trial_rival_car_idx: int


_HEAD = "last_lap_time_ms:I current_lap_time_ms:I sector1_ms:ms sector2_ms:ms"
_REST = ("lap_distance_m:f total_distance_m:f safety_car_delta_s:f car_position:B "
         "current_lap_num:B pit_status:B num_pit_stops:B sector:B current_lap_invalid:? "
         "penalties_s:B total_warnings:B corner_cutting_warnings:B "
         "num_unserved_drive_through_pens:B num_unserved_stop_go_pens:B grid_position:B "
         "driver_status:B result_status:B pit_lane_timer_active:? pit_lane_time_in_lane_ms:H "
         "pit_stop_timer_ms:H pit_stop_should_serve_pen:B")
_CAR_2023 = Layout(LapData, _HEAD, "delta_to_car_in_front_ms:H delta_to_leader_ms:H", _REST)
_CAR_2024 = Layout(LapData, _HEAD, "delta_to_car_in_front_ms:ms delta_to_leader_ms:ms", _REST,
                   "speed_trap_fastest_speed_kph:f speed_trap_fastest_lap:B")
_TRAILER = "time_trial_pb_car_idx:B time_trial_rival_car_idx:B"
_PACKET_2024: list[Part] = [("cars", _CAR_2024, 22), _TRAILER]

LAYOUTS = {
    2023: Layout(LapDataPacket, ("cars", _CAR_2023, 22), _TRAILER),
    2024: Layout(LapDataPacket, *_PACKET_2024),
    2025: Layout(LapDataPacket, *_PACKET_2024),
    2026: Layout(LapDataPacket, *with_cars(_PACKET_2024, 24)),
}
"""Wire layout per packet format."""
