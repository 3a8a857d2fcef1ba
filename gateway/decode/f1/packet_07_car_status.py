"""Packet 7, Car Status (format 2024: 1239 bytes = header + 22 × 55).

Hot path: one precompiled per-car `struct.Struct` and `iter_unpack`. With "Your Telemetry:
Restricted", other players' fuel, ERS, power and brake bias arrive as 0: "not shared", not empty.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gateway.decode.f1.header import HEADER_SIZE, Header
from gateway.decode.f1.header import encode as encode_header

NUM_CARS = 22
CAR = struct.Struct("<BBBBBfffHHBBHBBBbfffBfffB")  # 55 bytes
SIZE = HEADER_SIZE + NUM_CARS * CAR.size  # 1239

VISUAL_COMPOUNDS: dict[int, str] = {16: "soft", 17: "medium", 18: "hard", 7: "inter", 8: "wet"}


class CarStatus(NamedTuple):
    """One car's status. Fuel in kg, power in W, ERS energy in J, distances in m.
    Compounds: see VISUAL_COMPOUNDS (actual: 16 = C5 … 21 = C0, 7 inter, 8 wet)."""

    traction_control: int
    anti_lock_brakes: int
    fuel_mix: int
    front_brake_bias: int
    pit_limiter_status: int
    fuel_in_tank_kg: float
    fuel_capacity_kg: float
    fuel_remaining_laps: float
    max_rpm: int
    idle_rpm: int
    max_gears: int
    drs_allowed: int
    drs_activation_distance_m: int
    actual_tyre_compound: int
    visual_tyre_compound: int
    tyres_age_laps: int
    vehicle_fia_flags: int
    engine_power_ice_w: float
    engine_power_mguk_w: float
    ers_store_energy_j: float
    ers_deploy_mode: int
    ers_harvested_mguk_j: float
    ers_harvested_mguh_j: float
    ers_deployed_this_lap_j: float
    network_paused: int


class CarStatusPacket(NamedTuple):
    """All 22 slots, indexed by vehicle index."""

    cars: tuple[CarStatus, ...]


_make = CarStatus._make


def decode(header: Header, data: bytes) -> CarStatusPacket:
    """`data` is the whole datagram, its length already checked against SIZE."""
    return CarStatusPacket(tuple(map(_make, CAR.iter_unpack(data[HEADER_SIZE:SIZE]))))


def encode(header: Header, body: CarStatusPacket) -> bytes:
    return encode_header(header) + b"".join(CAR.pack(*c) for c in body.cars)
