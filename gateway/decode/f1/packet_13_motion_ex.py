"""Packet 13, Motion Ex, sent at the menu rate: the player car's suspension, wheels and body
physics (only the player's car).

Sizes: 217 (2023), 237 (2024: aero heights, roll angles, chassis yaw), 273 (2025, 2026:
chassis pitch, wheel camber and camber gain). Wheel arrays: RL, RR, FL, FR.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 13

QuadF = tuple[float, float, float, float]
_ZERO4 = (0.0, 0.0, 0.0, 0.0)


class MotionEx(NamedTuple):
    """Suspension in mm (velocity mm/s, acceleration mm/s²); wheel speeds m/s; slip angles
    and angles in radians; forces in N; heights in m; local velocity m/s; angular velocity
    rad/s and acceleration rad/s². Fields after `wheel_vert_force` are sent from 2024
    (aero heights … chassis yaw) or 2025 (chassis pitch, camber) on."""

    suspension_position: QuadF
    suspension_velocity: QuadF
    suspension_acceleration: QuadF
    wheel_speed: QuadF
    wheel_slip_ratio: QuadF
    wheel_slip_angle: QuadF
    wheel_lat_force: QuadF
    wheel_long_force: QuadF
    height_of_cog_above_ground_m: float
    local_velocity_x: float
    local_velocity_y: float
    local_velocity_z: float
    angular_velocity_x: float
    angular_velocity_y: float
    angular_velocity_z: float
    angular_acceleration_x: float
    angular_acceleration_y: float
    angular_acceleration_z: float
    front_wheels_angle_rad: float
    wheel_vert_force: QuadF
    front_aero_height_m: float = 0.0
    rear_aero_height_m: float = 0.0
    front_roll_angle_rad: float = 0.0
    rear_roll_angle_rad: float = 0.0
    chassis_yaw_rad: float = 0.0
    chassis_pitch_rad: float = 0.0
    wheel_camber_rad: QuadF = _ZERO4
    wheel_camber_gain_rad: QuadF = _ZERO4


_2023 = ("suspension_position:4f suspension_velocity:4f suspension_acceleration:4f "
         "wheel_speed:4f wheel_slip_ratio:4f wheel_slip_angle:4f wheel_lat_force:4f "
         "wheel_long_force:4f height_of_cog_above_ground_m:f local_velocity_x:f "
         "local_velocity_y:f local_velocity_z:f angular_velocity_x:f angular_velocity_y:f "
         "angular_velocity_z:f angular_acceleration_x:f angular_acceleration_y:f "
         "angular_acceleration_z:f front_wheels_angle_rad:f wheel_vert_force:4f")
_2024 = ("front_aero_height_m:f rear_aero_height_m:f front_roll_angle_rad:f "
         "rear_roll_angle_rad:f chassis_yaw_rad:f")
_2025 = "chassis_pitch_rad:f wheel_camber_rad:4f wheel_camber_gain_rad:4f"
LAYOUTS = {
    2023: Layout(MotionEx, _2023),
    2024: Layout(MotionEx, _2023, _2024),
    2025: Layout(MotionEx, _2023, _2024, _2025),
    2026: Layout(MotionEx, _2023, _2024, _2025),
}
"""Wire layout per packet format."""
