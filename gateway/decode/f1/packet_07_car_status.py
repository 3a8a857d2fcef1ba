"""Packet 7, Car Status, sent at the menu rate: fuel, tyres, ERS, assists.

Sizes: 1239 (2023–2025: 22 × 55), 1445 (2026: 24 × 59, with ersHarvestLimitPerLap).
With "Your Telemetry: Restricted", other players' fuel, ERS, power and brake bias arrive as 0:
"not shared", not empty.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 7

VISUAL_COMPOUNDS: dict[int, str] = {16: "soft", 17: "medium", 18: "hard", 7: "inter", 8: "wet"}


class CarStatus(NamedTuple):
    """One car's status. Fuel in kg, power in W, ERS energy in J, distances in m.
    Compounds: see VISUAL_COMPOUNDS (actual: 16 = C5 … 21 = C0, 22 = C6, 7 inter, 8 wet).
    `ers_harvest_limit_per_lap_j` is sent from format 2026 on (0.0 before)."""

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
    ers_harvest_limit_per_lap_j: float = 0.0


class CarStatusPacket(NamedTuple):
    """Every slot (22, or 24 in 2026), indexed by vehicle index."""

    cars: tuple[CarStatus, ...]


_HEAD = ("traction_control:B anti_lock_brakes:B fuel_mix:B front_brake_bias:B "
         "pit_limiter_status:B fuel_in_tank_kg:f fuel_capacity_kg:f fuel_remaining_laps:f "
         "max_rpm:H idle_rpm:H max_gears:B drs_allowed:B drs_activation_distance_m:H "
         "actual_tyre_compound:B visual_tyre_compound:B tyres_age_laps:B vehicle_fia_flags:b "
         "engine_power_ice_w:f engine_power_mguk_w:f ers_store_energy_j:f ers_deploy_mode:B "
         "ers_harvested_mguk_j:f ers_harvested_mguh_j:f")
_TAIL = "ers_deployed_this_lap_j:f network_paused:B"
_CAR = Layout(CarStatus, _HEAD, _TAIL)

LAYOUTS = {
    2023: Layout(CarStatusPacket, ("cars", _CAR, 22)),
    2024: Layout(CarStatusPacket, ("cars", _CAR, 22)),
    2025: Layout(CarStatusPacket, ("cars", _CAR, 22)),
    2026: Layout(CarStatusPacket, ("cars", Layout(
        CarStatus, _HEAD, "ers_harvest_limit_per_lap_j:f", _TAIL), 24)),
}
"""Wire layout per packet format."""
