"""Packet 2, Lap Data (format 2024: 1285 bytes = header + 22 × 57 + 2).

Hot path (menu rate, up to 60 Hz per rig): one precompiled per-car `struct.Struct` walked with
`iter_unpack`, plain NamedTuples out. EA sends times as a milliseconds part (u16) plus a whole
minutes part (u8); they are folded into one `*_ms` int here and split again on encode.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gateway.decode.f1.header import HEADER_SIZE, Header
from gateway.decode.f1.header import encode as encode_header

NUM_CARS = 22
CAR = struct.Struct("<IIHBHBHBHBfffBBBBBBBBBBBBBBBHHBfB")  # 57 bytes
TRAILER = struct.Struct("<BB")
SIZE = HEADER_SIZE + NUM_CARS * CAR.size + TRAILER.size  # 1285
_CARS_END = HEADER_SIZE + NUM_CARS * CAR.size
_MINUTE_MS = 60_000


class LapData(NamedTuple):
    """One car's lap state. Times in ms (minute parts folded in), distances in metres (negative
    before the line is first crossed). pit_status: 0 none, 1 pitting, 2 in the pit area.
    result_status: 0 invalid, 1 inactive (both = empty slot), 2 active, 3 finished, ..."""

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
    speed_trap_fastest_speed_kph: float
    speed_trap_fastest_lap: int


class LapDataPacket(NamedTuple):
    """All 22 slots, indexed by vehicle index (the player's is `header.player_car_idx`)."""

    cars: tuple[LapData, ...]
    time_trial_pb_car_idx: int
    time_trial_rival_car_idx: int


def decode(header: Header, data: bytes) -> LapDataPacket:
    """`data` is the whole datagram, its length already checked against SIZE."""
    cars = tuple([
        LapData(r[0], r[1], r[2] + r[3] * _MINUTE_MS, r[4] + r[5] * _MINUTE_MS,
                r[6] + r[7] * _MINUTE_MS, r[8] + r[9] * _MINUTE_MS,
                r[10], r[11], r[12], r[13], r[14], r[15], r[16], r[17], r[18] != 0,
                r[19], r[20], r[21], r[22], r[23], r[24], r[25], r[26], r[27] != 0,
                r[28], r[29], r[30], r[31], r[32])
        for r in CAR.iter_unpack(data[HEADER_SIZE:_CARS_END])
    ])
    pb, rival = TRAILER.unpack_from(data, _CARS_END)
    return LapDataPacket(cars, pb, rival)


def _split(ms: int) -> tuple[int, int]:
    """ms → (ms part, minutes part), EA's wire form."""
    minutes, part = divmod(ms, _MINUTE_MS)
    return part, minutes


def encode(header: Header, body: LapDataPacket) -> bytes:
    parts = [encode_header(header)]
    for c in body.cars:
        parts.append(CAR.pack(
            c.last_lap_time_ms, c.current_lap_time_ms, *_split(c.sector1_ms),
            *_split(c.sector2_ms), *_split(c.delta_to_car_in_front_ms),
            *_split(c.delta_to_leader_ms), c.lap_distance_m, c.total_distance_m,
            c.safety_car_delta_s, c.car_position, c.current_lap_num, c.pit_status,
            c.num_pit_stops, c.sector, int(c.current_lap_invalid), c.penalties_s,
            c.total_warnings, c.corner_cutting_warnings, c.num_unserved_drive_through_pens,
            c.num_unserved_stop_go_pens, c.grid_position, c.driver_status, c.result_status,
            int(c.pit_lane_timer_active), c.pit_lane_time_in_lane_ms, c.pit_stop_timer_ms,
            c.pit_stop_should_serve_pen, c.speed_trap_fastest_speed_kph,
            c.speed_trap_fastest_lap))
    parts.append(TRAILER.pack(body.time_trial_pb_car_idx, body.time_trial_rival_car_idx))
    return b"".join(parts)
