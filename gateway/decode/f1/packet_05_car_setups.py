"""Packet 5, Car Setups, sent 2/s. Other players' setups are blank online.

Sizes: 1107 (2023: 22 × 49), 1133 (2024, 2025: 22 × 50 + next front wing), 1233 (2026: 24).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout, Part, with_cars

PACKET_ID = 5


class CarSetup(NamedTuple):
    """Wings and suspension in setup clicks; camber and toe in degrees; pressures in psi;
    fuel in kg. `engine_braking_pct` from 2024 on."""

    front_wing: int
    rear_wing: int
    on_throttle_pct: int
    off_throttle_pct: int
    front_camber_deg: float
    rear_camber_deg: float
    front_toe_deg: float
    rear_toe_deg: float
    front_suspension: int
    rear_suspension: int
    front_anti_roll_bar: int
    rear_anti_roll_bar: int
    front_suspension_height: int
    rear_suspension_height: int
    brake_pressure_pct: int
    brake_bias_pct: int
    rear_left_tyre_pressure_psi: float
    rear_right_tyre_pressure_psi: float
    front_left_tyre_pressure_psi: float
    front_right_tyre_pressure_psi: float
    ballast: int
    fuel_load_kg: float
    engine_braking_pct: int = 0


class CarSetupsPacket(NamedTuple):
    """Every slot; `next_front_wing_value` (from 2024) is the wing after a pending change."""

    cars: tuple[CarSetup, ...]
    next_front_wing_value: float = 0.0


_HEAD = ("front_wing:B rear_wing:B on_throttle_pct:B off_throttle_pct:B front_camber_deg:f "
         "rear_camber_deg:f front_toe_deg:f rear_toe_deg:f front_suspension:B "
         "rear_suspension:B front_anti_roll_bar:B rear_anti_roll_bar:B "
         "front_suspension_height:B rear_suspension_height:B brake_pressure_pct:B "
         "brake_bias_pct:B")
_TAIL = ("rear_left_tyre_pressure_psi:f rear_right_tyre_pressure_psi:f "
         "front_left_tyre_pressure_psi:f front_right_tyre_pressure_psi:f ballast:B "
         "fuel_load_kg:f")
_PACKET_2024: list[Part] = [("cars", Layout(CarSetup, _HEAD, "engine_braking_pct:B", _TAIL), 22),
                "next_front_wing_value:f"]
LAYOUTS = {
    2023: Layout(CarSetupsPacket, ("cars", Layout(CarSetup, _HEAD, _TAIL), 22)),
    2024: Layout(CarSetupsPacket, *_PACKET_2024),
    2025: Layout(CarSetupsPacket, *_PACKET_2024),
    2026: Layout(CarSetupsPacket, *with_cars(_PACKET_2024, 24)),
}
"""Wire layout per packet format."""
