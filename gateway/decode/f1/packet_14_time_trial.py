"""Packet 14, Time Trial, sent 1/s in Time Trial mode (format 2024 on): the session best,
personal best and rival lap. Sizes: 101 (2024, 2025), 104 (2026: team id u16).
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 14


class TimeTrialDataSet(NamedTuple):
    """One lap's times in ms and the assists it was driven with; valid 0/1."""

    car_idx: int
    team_id: int
    lap_time_ms: int
    sector1_ms: int
    sector2_ms: int
    sector3_ms: int
    traction_control: int
    gearbox_assist: int
    anti_lock_brakes: int
    equal_car_performance: int
    custom_setup: int
    valid: int


class TimeTrialPacket(NamedTuple):
    player_session_best: TimeTrialDataSet
    personal_best: TimeTrialDataSet
    rival: TimeTrialDataSet


def _packet(team: str) -> Layout:
    data_set = Layout(TimeTrialDataSet,
                      f"car_idx:B team_id:{team} lap_time_ms:I sector1_ms:I sector2_ms:I "
                      "sector3_ms:I traction_control:B gearbox_assist:B anti_lock_brakes:B "
                      "equal_car_performance:B custom_setup:B valid:B")
    return Layout(TimeTrialPacket, ("player_session_best", data_set, 0),
                  ("personal_best", data_set, 0), ("rival", data_set, 0))


LAYOUTS = {2024: _packet("B"), 2025: _packet("B"), 2026: _packet("H")}
"""Wire layout per packet format (none in 2023)."""
