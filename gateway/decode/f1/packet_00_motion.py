"""Packet 0, Motion, sent at the menu rate while the player is in control: every car's
position, velocity, orientation and g-forces.

Sizes: 1349 (2023–2025: 22 × 60), 1325 (2026: 24 × 54; the g-forces became int16 in
thousandths of a g, decoded to float g here like the older formats).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 0


class CarMotion(NamedTuple):
    """World position in m, velocity in m/s; direction vectors are normalised and scaled to
    ±32767 (divide by 32767.0); g-forces in g; yaw, pitch and roll in radians."""

    world_position_x_m: float
    world_position_y_m: float
    world_position_z_m: float
    world_velocity_x_mps: float
    world_velocity_y_mps: float
    world_velocity_z_mps: float
    world_forward_dir_x: int
    world_forward_dir_y: int
    world_forward_dir_z: int
    world_right_dir_x: int
    world_right_dir_y: int
    world_right_dir_z: int
    g_force_lateral: float
    g_force_longitudinal: float
    g_force_vertical: float
    yaw_rad: float
    pitch_rad: float
    roll_rad: float


class MotionPacket(NamedTuple):
    """Every slot (22, or 24 in 2026), indexed by vehicle index."""

    cars: tuple[CarMotion, ...]


def _car(g_force: str) -> Layout:
    return Layout(CarMotion,
                  "world_position_x_m:f world_position_y_m:f world_position_z_m:f "
                  "world_velocity_x_mps:f world_velocity_y_mps:f world_velocity_z_mps:f "
                  "world_forward_dir_x:h world_forward_dir_y:h world_forward_dir_z:h "
                  "world_right_dir_x:h world_right_dir_y:h world_right_dir_z:h "
                  f"g_force_lateral:{g_force} g_force_longitudinal:{g_force} "
                  f"g_force_vertical:{g_force} yaw_rad:f pitch_rad:f roll_rad:f")


_CAR = _car("f")
LAYOUTS = {
    2023: Layout(MotionPacket, ("cars", _CAR, 22)),
    2024: Layout(MotionPacket, ("cars", _CAR, 22)),
    2025: Layout(MotionPacket, ("cars", _CAR, 22)),
    2026: Layout(MotionPacket, ("cars", _car("milli"), 24)),
}
"""Wire layout per packet format."""
