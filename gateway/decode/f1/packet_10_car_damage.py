"""Packet 10, Car Damage, sent 10/s: tyre wear, component damage and engine wear.

Sizes: 953 (2023, 2024: 22 × 42), 1041 (2025: 22 × 46, tyre blisters), 1133 (2026: 24).
With restricted telemetry, other players' values arrive as 0: "not shared".
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 10


class CarDamage(NamedTuple):
    """Wear and damage in percent. Wheel arrays: rear left, rear right, front left, front
    right. drs_fault/ers_fault/engine_blown/engine_seized are 0/1. `tyre_blisters_pct` from
    2025 on."""

    tyres_wear_pct: tuple[float, float, float, float]
    tyres_damage_pct: tuple[int, int, int, int]
    brakes_damage_pct: tuple[int, int, int, int]
    front_left_wing_damage_pct: int
    front_right_wing_damage_pct: int
    rear_wing_damage_pct: int
    floor_damage_pct: int
    diffuser_damage_pct: int
    sidepod_damage_pct: int
    drs_fault: int
    ers_fault: int
    gearbox_damage_pct: int
    engine_damage_pct: int
    engine_mguh_wear_pct: int
    engine_es_wear_pct: int
    engine_ce_wear_pct: int
    engine_ice_wear_pct: int
    engine_mguk_wear_pct: int
    engine_tc_wear_pct: int
    engine_blown: int
    engine_seized: int
    tyre_blisters_pct: tuple[int, int, int, int] = (0, 0, 0, 0)


class CarDamagePacket(NamedTuple):
    cars: tuple[CarDamage, ...]


_TYRES = "tyres_wear_pct:4f tyres_damage_pct:4B brakes_damage_pct:4B"
_REST = ("front_left_wing_damage_pct:B front_right_wing_damage_pct:B rear_wing_damage_pct:B "
         "floor_damage_pct:B diffuser_damage_pct:B sidepod_damage_pct:B drs_fault:B "
         "ers_fault:B gearbox_damage_pct:B engine_damage_pct:B engine_mguh_wear_pct:B "
         "engine_es_wear_pct:B engine_ce_wear_pct:B engine_ice_wear_pct:B "
         "engine_mguk_wear_pct:B engine_tc_wear_pct:B engine_blown:B engine_seized:B")
_OLD = Layout(CarDamage, _TYRES, _REST)
_NEW = Layout(CarDamage, _TYRES, "tyre_blisters_pct:4B", _REST)
LAYOUTS = {
    2023: Layout(CarDamagePacket, ("cars", _OLD, 22)),
    2024: Layout(CarDamagePacket, ("cars", _OLD, 22)),
    2025: Layout(CarDamagePacket, ("cars", _NEW, 22)),
    2026: Layout(CarDamagePacket, ("cars", _NEW, 24)),
}
"""Wire layout per packet format."""
