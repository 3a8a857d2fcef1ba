"""Packet 16, Car Telemetry 2, sent at the menu rate (format 2026 only): active aero and
overtake mode of every car. 269 bytes (24 × 10).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 16


class CarTelemetry2(NamedTuple):
    """Activation distances in m; regulations_2026 is 1 when the car runs the 2026 rules."""

    active_aero_mode: int
    active_aero_available: int
    active_aero_activation_distance_m: int
    overtake_available: int
    overtake_active: int
    overtake_activation_distance_m: int
    regulations_2026: int
    driving_wrong_way: int


class CarTelemetry2Packet(NamedTuple):
    cars: tuple[CarTelemetry2, ...]


_CAR = Layout(CarTelemetry2, "active_aero_mode:B active_aero_available:B "
              "active_aero_activation_distance_m:H overtake_available:B overtake_active:B "
              "overtake_activation_distance_m:H regulations_2026:B driving_wrong_way:B")
LAYOUTS = {2026: Layout(CarTelemetry2Packet, ("cars", _CAR, 24))}
"""Wire layout per packet format (2026 only)."""
