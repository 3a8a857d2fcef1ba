"""Packet 6, Car Telemetry (format 2024: 1352 bytes = header + 22 × 60 + 3).

Hot path: one precompiled per-car `struct.Struct` and `iter_unpack`; plain NamedTuples out.
Wheel arrays are in EA's order: rear left, rear right, front left, front right.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gateway.decode.f1.header import HEADER_SIZE, Header
from gateway.decode.f1.header import encode as encode_header

NUM_CARS = 22
CAR = struct.Struct("<HfffBbHBBH4H4B4BH4f4B")  # 60 bytes
TRAILER = struct.Struct("<BBb")
SIZE = HEADER_SIZE + NUM_CARS * CAR.size + TRAILER.size  # 1352
_CARS_END = HEADER_SIZE + NUM_CARS * CAR.size

Quad = tuple[int, int, int, int]
QuadF = tuple[float, float, float, float]


class CarTelemetry(NamedTuple):
    """One car's instant telemetry. throttle/brake 0–1, steer -1 (left) to 1, clutch 0–100 %,
    gear -1 reverse / 0 neutral / 1–8; temperatures °C; pressures psi."""

    speed_kph: int
    throttle: float
    steer: float
    brake: float
    clutch: int
    gear: int
    engine_rpm: int
    drs: bool
    rev_lights_pct: int
    rev_lights_bits: int
    brakes_temp_c: Quad
    tyre_surface_temp_c: Quad
    tyre_inner_temp_c: Quad
    engine_temp_c: int
    tyre_pressure_psi: QuadF
    surface_type: Quad


class CarTelemetryPacket(NamedTuple):
    """All 22 slots. mfd_panel_idx 255 = MFD closed; suggested_gear 0 = none suggested."""

    cars: tuple[CarTelemetry, ...]
    mfd_panel_idx: int
    mfd_panel_idx_secondary: int
    suggested_gear: int


def decode(header: Header, data: bytes) -> CarTelemetryPacket:
    """`data` is the whole datagram, its length already checked against SIZE."""
    cars = tuple([
        CarTelemetry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] != 0, r[8], r[9],
                     (r[10], r[11], r[12], r[13]), (r[14], r[15], r[16], r[17]),
                     (r[18], r[19], r[20], r[21]), r[22], (r[23], r[24], r[25], r[26]),
                     (r[27], r[28], r[29], r[30]))
        for r in CAR.iter_unpack(data[HEADER_SIZE:_CARS_END])
    ])
    mfd, mfd2, gear = TRAILER.unpack_from(data, _CARS_END)
    return CarTelemetryPacket(cars, mfd, mfd2, gear)


def encode(header: Header, body: CarTelemetryPacket) -> bytes:
    parts = [encode_header(header)]
    for c in body.cars:
        parts.append(CAR.pack(
            c.speed_kph, c.throttle, c.steer, c.brake, c.clutch, c.gear, c.engine_rpm,
            int(c.drs), c.rev_lights_pct, c.rev_lights_bits, *c.brakes_temp_c,
            *c.tyre_surface_temp_c, *c.tyre_inner_temp_c, c.engine_temp_c,
            *c.tyre_pressure_psi, *c.surface_type))
    parts.append(TRAILER.pack(body.mfd_panel_idx, body.mfd_panel_idx_secondary,
                              body.suggested_gear))
    return b"".join(parts)
