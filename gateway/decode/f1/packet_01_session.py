"""Packet 1, Session (format 2024: 753 bytes), sent 2/s.

Not a hot path: one flat `struct.Struct` for the whole body, then sliced into named fields.
Marshal zones (21) and weather forecast samples (64) are kept in full, used slots or not, so
encode(decode(x)) == x.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from gateway.decode.f1.header import HEADER_SIZE, Header
from gateway.decode.f1.header import encode as encode_header

NUM_MARSHAL_ZONES = 21
NUM_FORECASTS = 64
NUM_WEEKEND = 12

_HEAD = "BbbBHBbBHHBBBBBB"  # 16 fields: weather … num_marshal_zones
_ZONE = "fb"
_MID = "BBB"  # safety_car_status, network_game, num_weather_forecast_samples
_FORECAST = "BBBbbbbB"
_TAIL = "BBIIIBBB" + "B" * 11 + "I" + "B" * 8 + "B" * 24  # 52 fields
_END = "B" + "B" * NUM_WEEKEND + "ff"
BODY = struct.Struct("<" + _HEAD + _ZONE * NUM_MARSHAL_ZONES + _MID
                     + _FORECAST * NUM_FORECASTS + _TAIL + _END)
SIZE = HEADER_SIZE + BODY.size  # 753

_N_HEAD, _N_TAIL = 16, 52
_Z0 = _N_HEAD
_M0 = _Z0 + 2 * NUM_MARSHAL_ZONES
_F0 = _M0 + 3
_T0 = _F0 + 8 * NUM_FORECASTS
_E0 = _T0 + _N_TAIL

TRACK_NAMES: dict[int, str] = {
    0: "melbourne", 1: "paul_ricard", 2: "shanghai", 3: "sakhir", 4: "catalunya",
    5: "monaco", 6: "montreal", 7: "silverstone", 8: "hockenheim", 9: "hungaroring",
    10: "spa", 11: "monza", 12: "singapore", 13: "suzuka", 14: "abu_dhabi", 15: "texas",
    16: "brazil", 17: "austria", 18: "sochi", 19: "mexico", 20: "baku", 21: "sakhir_short",
    22: "silverstone_short", 23: "texas_short", 24: "suzuka_short", 25: "hanoi",
    26: "zandvoort", 27: "imola", 28: "portimao", 29: "jeddah", 30: "miami",
    31: "las_vegas", 32: "losail", 39: "silverstone_reverse", 40: "austria_reverse",
    41: "zandvoort_reverse",
}
"""EA's track ids (-1 = unknown). 39–41 are the reverse layouts added during F1 23."""

SESSION_TYPES: dict[int, str] = {
    0: "unknown", 1: "fp1", 2: "fp2", 3: "fp3", 4: "short_practice", 5: "q1", 6: "q2",
    7: "q3", 8: "short_q", 9: "osq", 10: "sprint_shootout_1", 11: "sprint_shootout_2",
    12: "sprint_shootout_3", 13: "short_sprint_shootout", 14: "one_shot_sprint_shootout",
    15: "race", 16: "race_2", 17: "race_3", 18: "time_trial",
}
"""EA's session type ids, format 2024."""


class MarshalZone(NamedTuple):
    zone_start: float  # fraction 0..1 of the lap
    zone_flag: int  # -1 unknown, 0 none, 1 green, 2 blue, 3 yellow


class WeatherForecastSample(NamedTuple):
    session_type: int
    time_offset_min: int
    weather: int
    track_temp_c: int
    track_temp_change: int
    air_temp_c: int
    air_temp_change: int
    rain_pct: int


class SessionData(NamedTuple):
    """The session: track, weather, time left, rules. Temperatures °C, lengths m, times s.
    weather: 0 clear … 5 storm. safety_car_status: 0 none, 1 full, 2 virtual, 3 formation.
    `marshal_zones` / `weather_forecast` hold every slot (21 / 64); the first
    `num_marshal_zones` / `num_weather_forecast_samples` are the used ones. `settings` holds
    the 52 assist/rules/option bytes after the forecast, in EA's order (see SETTINGS_FIELDS)."""

    weather: int
    track_temp_c: int
    air_temp_c: int
    total_laps: int
    track_length_m: int
    session_type: int
    track_id: int
    formula: int
    session_time_left_s: int
    session_duration_s: int
    pit_speed_limit_kph: int
    game_paused: int
    is_spectating: int
    spectator_car_idx: int
    sli_pro_native_support: int
    num_marshal_zones: int
    marshal_zones: tuple[MarshalZone, ...]
    safety_car_status: int
    network_game: int
    num_weather_forecast_samples: int
    weather_forecast: tuple[WeatherForecastSample, ...]
    settings: tuple[int, ...]
    num_sessions_in_weekend: int
    weekend_structure: tuple[int, ...]
    sector2_start_m: float
    sector3_start_m: float


SETTINGS_FIELDS: tuple[str, ...] = (
    "forecast_accuracy", "ai_difficulty", "season_link_id", "weekend_link_id",
    "session_link_id", "pit_stop_window_ideal_lap", "pit_stop_window_latest_lap",
    "pit_stop_rejoin_position", "steering_assist", "braking_assist", "gearbox_assist",
    "pit_assist", "pit_release_assist", "ers_assist", "drs_assist", "dynamic_racing_line",
    "dynamic_racing_line_type", "game_mode", "rule_set", "time_of_day_min", "session_length",
    "speed_units_lead_player", "temperature_units_lead_player",
    "speed_units_secondary_player", "temperature_units_secondary_player",
    "num_safety_car_periods", "num_virtual_safety_car_periods", "num_red_flag_periods",
    "equal_car_performance", "recovery_mode", "flashback_limit", "surface_type",
    "low_fuel_mode", "race_starts", "tyre_temperature", "pit_lane_tyre_sim", "car_damage",
    "car_damage_rate", "collisions", "collisions_off_for_first_lap_only",
    "mp_unsafe_pit_release", "mp_off_for_griefing", "corner_cutting_stringency",
    "parc_ferme_rules", "pit_stop_experience", "safety_car", "safety_car_experience",
    "formation_lap", "formation_lap_experience", "red_flags", "affects_licence_level_solo",
    "affects_licence_level_mp",
)
"""Names of `SessionData.settings`, in order; `settings_dict()` pairs them up."""
assert len(SETTINGS_FIELDS) == _N_TAIL


def settings_dict(session: SessionData) -> dict[str, int]:
    """The rules/assist options by name (e.g. "ai_difficulty", "game_mode")."""
    return dict(zip(SETTINGS_FIELDS, session.settings))


def decode(header: Header, data: bytes) -> SessionData:
    """`data` is the whole datagram, its length already checked against SIZE."""
    v = BODY.unpack_from(data, HEADER_SIZE)
    zones = tuple(MarshalZone(v[i], v[i + 1]) for i in range(_Z0, _M0, 2))
    forecast = tuple(WeatherForecastSample._make(v[i:i + 8]) for i in range(_F0, _T0, 8))
    return SessionData._make(
        (*v[:_N_HEAD], zones, v[_M0], v[_M0 + 1], v[_M0 + 2], forecast, v[_T0:_E0], v[_E0],
         v[_E0 + 1:_E0 + 1 + NUM_WEEKEND], v[-2], v[-1]))


def encode(header: Header, body: SessionData) -> bytes:
    """Exact inverse of decode. Short zone/forecast/settings tuples are padded with zeros."""
    zones = list(body.marshal_zones) + [MarshalZone(0.0, 0)] * NUM_MARSHAL_ZONES
    forecast = (list(body.weather_forecast)
                + [WeatherForecastSample(0, 0, 0, 0, 0, 0, 0, 0)] * NUM_FORECASTS)
    settings = (tuple(body.settings) + (0,) * _N_TAIL)[:_N_TAIL]
    weekend = (tuple(body.weekend_structure) + (0,) * NUM_WEEKEND)[:NUM_WEEKEND]
    values: list[Any] = list(body[:_N_HEAD])
    for zone in zones[:NUM_MARSHAL_ZONES]:
        values.extend(zone)
    values += [body.safety_car_status, body.network_game, body.num_weather_forecast_samples]
    for sample in forecast[:NUM_FORECASTS]:
        values.extend(sample)
    values.extend(settings)
    values.append(body.num_sessions_in_weekend)
    values.extend(weekend)
    values += [body.sector2_start_m, body.sector3_start_m]
    return encode_header(header) + BODY.pack(*values)
