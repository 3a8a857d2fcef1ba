"""Packet 1, Session, sent 2/s: track, weather, time left, rules and assists.

Sizes: 644 (2023: 56 forecast samples, 28 option bytes), 753 (2024, 2025: 64 samples, 52
option bytes, weekend structure, sector starts), 926 (2026: active-aero and DRS zones, more
assists). Marshal zones (21) and forecast samples are kept in full, used slots or not, so
encode(decode(x)) == x.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.decode.f1.layout import Layout

PACKET_ID = 1
NUM_MARSHAL_ZONES = 21
NUM_WEEKEND = 12

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
"""EA's session type ids, formats 2024 on (2023 numbers them differently, see below)."""

SESSION_TYPES_2023: dict[int, str] = {
    0: "unknown", 1: "fp1", 2: "fp2", 3: "fp3", 4: "short_practice", 5: "q1", 6: "q2",
    7: "q3", 8: "short_q", 9: "osq", 10: "race", 11: "race_2", 12: "race_3", 13: "time_trial",
}
"""Format 2023's session type ids: no sprint shootouts, so 10 is the race (not shootout 1)."""


def session_type_name(packet_format: int, session_type: int) -> str:
    """The session type's name in the packet's own format ("race", "q1", …)."""
    names = SESSION_TYPES_2023 if packet_format == 2023 else SESSION_TYPES
    return names.get(session_type, f"type-{session_type}")


class MarshalZone(NamedTuple):
    zone_start: float  # fraction 0..1 of the lap
    zone_flag: int  # -1 unknown, 0 none, 1 green, 2 blue, 3 yellow


class ZoneSpan(NamedTuple):
    """An active-aero or DRS zone (format 2026), as fractions 0..1 of the lap."""

    zone_start: float
    zone_end: float


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
    the assist/rules/option values after the forecast, in EA's order (see SETTINGS_FIELDS:
    52 of them from 2024 on, the first 28 in 2023). Format 2023 sends nothing after them (the
    defaults here); the fields after `sector3_start_m` are sent from format 2026 on."""

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
    num_sessions_in_weekend: int = 0
    weekend_structure: tuple[int, ...] = ()
    sector2_start_m: float = 0.0
    sector3_start_m: float = 0.0
    active_aero_track_status: int = 0
    num_active_aero_zones_full: int = 0
    active_aero_zones_full: tuple[ZoneSpan, ...] = ()
    num_active_aero_zones_partial: int = 0
    active_aero_zones_partial: tuple[ZoneSpan, ...] = ()
    num_drs_zones: int = 0
    drs_zones: tuple[ZoneSpan, ...] = ()
    start_reaction_time_s: float = 0.0
    anti_lock_brakes_assist: int = 0
    traction_control_assist: int = 0
    dynamic_racing_line_hi_vis: int = 0
    dynamic_racing_line_colour_blind: int = 0
    recurring_rewind_prompt: int = 0


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


def settings_dict(session: SessionData) -> dict[str, int]:
    """The rules/assist options by name (e.g. "ai_difficulty", "game_mode")."""
    return dict(zip(SETTINGS_FIELDS, session.settings))

_ZONE = Layout(MarshalZone, "zone_start:f zone_flag:b")
_FORECAST = Layout(WeatherForecastSample,
                   "session_type:B time_offset_min:B weather:B track_temp_c:b "
                   "track_temp_change:b air_temp_c:b air_temp_change:b rain_pct:B")
_SPAN = Layout(ZoneSpan, "zone_start:f zone_end:f")
_HEAD = ("weather:B track_temp_c:b air_temp_c:b total_laps:B track_length_m:H session_type:B "
         "track_id:b formula:B session_time_left_s:H session_duration_s:H "
         "pit_speed_limit_kph:B game_paused:B is_spectating:B spectator_car_idx:B "
         "sli_pro_native_support:B num_marshal_zones:B")
_MID = "safety_car_status:B network_game:B num_weather_forecast_samples:B"
_SETTINGS_2023 = "BB III BBB BBBBBBB BB BB I B BBBB BBB"  # 28: forecast_accuracy … red flags
_SETTINGS_2024 = _SETTINGS_2023 + " " + "B" * 24  # 52: … affects_licence_level_mp
_WEEKEND = ("num_sessions_in_weekend:B weekend_structure:12B sector2_start_m:f "
            "sector3_start_m:f")


def _packet(forecasts: int, settings: str, *rest: str | tuple[str, Layout, int]) -> Layout:
    return Layout(SessionData, _HEAD, ("marshal_zones", _ZONE, NUM_MARSHAL_ZONES), _MID,
                  ("weather_forecast", _FORECAST, forecasts),
                  f"settings:({settings.replace(' ', '')})", *rest)


_2024 = _packet(64, _SETTINGS_2024, _WEEKEND)
LAYOUTS = {
    2023: _packet(56, _SETTINGS_2023),
    2024: _2024,
    2025: _2024,
    2026: _packet(64, _SETTINGS_2024, _WEEKEND, "active_aero_track_status:B "
                  "num_active_aero_zones_full:B", ("active_aero_zones_full", _SPAN, 8),
                  "num_active_aero_zones_partial:B", ("active_aero_zones_partial", _SPAN, 8),
                  "num_drs_zones:B", ("drs_zones", _SPAN, 4),
                  "start_reaction_time_s:f anti_lock_brakes_assist:B traction_control_assist:B "
                  "dynamic_racing_line_hi_vis:B dynamic_racing_line_colour_blind:B "
                  "recurring_rewind_prompt:B"),
}
"""Wire layout per packet format."""
