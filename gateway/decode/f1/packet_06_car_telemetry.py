"""Packet 6, Car Telemetry, sent at the menu rate: speed, pedals, gear, temperatures.

Sizes: 1352 (2023–2025: 22 × 60 + 3), 1448 (2026: 24 × 59 + 3; the engine temperature
shrank to u8). Wheel arrays are in EA's order: rear left, rear right, front left, front right.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout, Part

PACKET_ID = 6

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
    """Every slot. mfd_panel_idx 255 = MFD closed; suggested_gear 0 = none suggested."""

    cars: tuple[CarTelemetry, ...]
    mfd_panel_idx: int
    mfd_panel_idx_secondary: int
    suggested_gear: int


def _car(engine_temp: str) -> Layout:
    return Layout(CarTelemetry,
                  "speed_kph:H throttle:f steer:f brake:f clutch:B gear:b engine_rpm:H drs:? "
                  "rev_lights_pct:B rev_lights_bits:H brakes_temp_c:4H tyre_surface_temp_c:4B "
                  f"tyre_inner_temp_c:4B engine_temp_c:{engine_temp} tyre_pressure_psi:4f "
                  "surface_type:4B")


_TRAILER = "mfd_panel_idx:B mfd_panel_idx_secondary:B suggested_gear:b"
_PACKET: list[Part] = [("cars", _car("H"), 22), _TRAILER]

LAYOUTS = {
    2023: Layout(CarTelemetryPacket, *_PACKET),
    2024: Layout(CarTelemetryPacket, *_PACKET),
    2025: Layout(CarTelemetryPacket, *_PACKET),
    2026: Layout(CarTelemetryPacket, ("cars", _car("B"), 24), _TRAILER),
}
"""Wire layout per packet format."""
