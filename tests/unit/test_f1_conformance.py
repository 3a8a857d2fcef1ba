"""Conformance on real packets: every datagram under ../shared/data/f1 decodes (or is dropped
with its reason), re-encodes to the same bytes, and, for the z0mt3c files, every field the
upstream TypeScript parser carries matches ours by name.

Where upstream differs it is upstream's layout, and the test says so (UPSTREAM_DIFFERS)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.decode.f1 import decode_packet, encode_packet
from gateway.errors import MalformedPacket

F1_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "f1"
BINS = F1_DATA / "maciejpedzich-f1-game-packet-parser"
MOCKS = F1_DATA / "z0mt3c-f1-telemetry-client"
needs_shared = pytest.mark.skipif(
    not F1_DATA.is_dir(), reason="../shared/data/f1 not present (a user's clone): "
    "real-packet conformance skipped")

BAD_LENGTH = {"2024-03-RDFL.bin", "2024-03-SCAR.bin"}  # hand-edited upstream: 44 and 47 bytes


def real_bins() -> list[Path]:
    return sorted(BINS.glob("*.bin")) if BINS.is_dir() else []


def mock_packets() -> list[tuple[str, dict[str, Any], bytes]]:
    """(id for the test, upstream's parsed dict, datagram) for every z0mt3c line."""
    out = []
    for path in sorted(MOCKS.glob("*.json")) if MOCKS.is_dir() else []:
        for n, line in enumerate(path.read_text().splitlines()):
            if line.strip():
                d = json.loads(line)
                msg = d["message"]
                data = bytes(msg["data"] if isinstance(msg, dict) else msg)
                out.append((f"{path.stem}:{n}:{d['packetID']}", d["parsed"], data))
    return out


# -- the maciejpedzich .bin files ------------------------------------------------------------

@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("path", real_bins(), ids=lambda p: p.name)
def test_every_real_datagram_decodes_and_re_encodes_to_the_same_bytes(path: Path) -> None:
    data = path.read_bytes()
    fmt, packet_id = int(path.name[:4]), int(path.name[5:7])
    if path.name in BAD_LENGTH:
        with pytest.raises(MalformedPacket) as exc:
            decode_packet(data)
        assert exc.value.reason == "bad_length"
        return
    packet = decode_packet(data)
    assert (packet.header.packet_format, packet.header.packet_id) == (fmt, packet_id)
    if packet_id == 3:
        assert packet.body.code == path.stem[-4:]
    assert encode_packet(*packet) == data  # spare union bytes and padding included


@needs_shared
@pytest.mark.shared
def test_real_packets_of_both_formats_decode_to_plausible_values() -> None:
    def body(name: str) -> Any:
        return decode_packet((BINS / name).read_bytes()).body

    for fmt in (2023, 2024):
        session = body(f"{fmt}-01.bin")
        assert 1000 < session.track_length_m < 8000 and -10 < session.air_temp_c < 60
        laps = body(f"{fmt}-02.bin")
        active = [c for c in laps.cars if c.result_status >= 2]
        assert active and all(1 <= c.car_position <= 22 for c in active)
        parts = body(f"{fmt}-04.bin")
        assert 1 <= parts.num_active_cars <= 22
        assert all(p.name for p in parts.cars[:parts.num_active_cars])
        history = body(f"{fmt}-11.bin")
        done = history.laps[:max(0, history.num_laps - 1)]
        assert all(40_000 < lap.lap_time_ms < 200_000 for lap in done if lap.lap_time_ms)
        assert all(abs(lap.sector1_ms + lap.sector2_ms + lap.sector3_ms - lap.lap_time_ms) <= 3
                   for lap in done if lap.lap_time_ms)
        sets = body(f"{fmt}-12.bin")
        assert sum(s.fitted for s in sets.sets) <= 1 and 0 <= sets.fitted_idx < 20 or \
            sets.fitted_idx == 255
    assert body("2024-13.bin").front_aero_height_m != 0.0  # new in 2024, absent in 2023
    assert body("2023-13.bin").front_aero_height_m == 0.0


# -- the z0mt3c JSON lines against upstream's decode -----------------------------------------

def _snake(name: str) -> str:
    name = name.removeprefix("m_")
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


# upstream name (snake_cased) → our field, where the rule "ours == theirs or starts with
# theirs + '_'" does not find it. A "+minutes" entry is EA's minutes part, folded into ours.
ALIASES = {
    "game_major_version": "game_major", "game_minor_version": "game_minor",
    "frame_identifier": "frame_id", "overall_frame_identifier": "overall_frame_id",
    "player_car_index": "player_car_idx",
    "secondary_player_car_index": "secondary_player_car_idx",
    "car_motion_data": "cars", "lap_data": "cars", "participants": "cars",
    "car_setups": "cars", "car_telemetry_data": "cars", "car_status_data": "cars",
    "classification_data": "cars", "car_damage_data": "cars", "lap_history_data": "laps",
    "tyre_stints_history_data": "tyre_stints", "tyre_set_data": "sets",
    "marshal_zones": "marshal_zones", "weather_forecast_samples": "weather_forecast",
    "last_lap_time_in_ms": "last_lap_time_ms", "current_lap_time_in_ms": "current_lap_time_ms",
    "sector1_time_in_ms": "sector1_ms", "sector1_time_minutes": "sector1_ms+minutes",
    "sector2_time_in_ms": "sector2_ms", "sector2_time_minutes": "sector2_ms+minutes",
    "sector3_time_in_ms": "sector3_ms", "sector3_time_minutes": "sector3_ms+minutes",
    "delta_to_car_in_front_in_ms": "delta_to_car_in_front_ms",
    "delta_to_car_in_front_minutes": "delta_to_car_in_front_ms+minutes",
    "delta_to_race_leader_in_ms": "delta_to_leader_ms",
    "delta_to_race_leader_minutes": "delta_to_leader_ms+minutes",
    "lap_time_in_ms": "lap_time_ms", "best_lap_time_in_ms": "best_lap_time_ms",
    "pit_lane_time_in_lane_in_ms": "pit_lane_time_in_lane_ms",
    "pit_stop_timer_in_ms": "pit_stop_timer_ms", "safety_car_delta": "safety_car_delta_s",
    "penalties": "penalties_s", "speed": "speed_kph", "engine_rpm": "engine_rpm",
    "max_rpm": "max_rpm", "idle_rpm": "idle_rpm", "rev_lights_percent": "rev_lights_pct",
    "rev_lights_bit_value": "rev_lights_bits", "brakes_temperature": "brakes_temp_c",
    "tyres_surface_temperature": "tyre_surface_temp_c",
    "tyres_inner_temperature": "tyre_inner_temp_c", "engine_temperature": "engine_temp_c",
    "tyres_pressure": "tyre_pressure_psi", "fuel_in_tank": "fuel_in_tank_kg",
    "fuel_capacity": "fuel_capacity_kg", "engine_power_ice": "engine_power_ice_w",
    "engine_power_mguk": "engine_power_mguk_w", "ers_store_energy": "ers_store_energy_j",
    "ers_harvested_this_lap_mguk": "ers_harvested_mguk_j",
    "ers_harvested_this_lap_mguh": "ers_harvested_mguh_j",
    "ers_deployed_this_lap": "ers_deployed_this_lap_j", "mfd_panel_index": "mfd_panel_idx",
    "mfd_panel_index_secondary_player": "mfd_panel_idx_secondary",
    "track_temperature": "track_temp_c", "air_temperature": "air_temp_c",
    "track_temperature_change": "track_temp_change", "air_temperature_change": "air_temp_change",
    "rain_percentage": "rain_pct", "time_offset": "time_offset_min",
    "spectator_car_index": "spectator_car_idx", "time_trial_pb_car_idx": "time_trial_pb_car_idx",
    "on_throttle": "on_throttle_pct", "off_throttle": "off_throttle_pct",
    "brake_pressure": "brake_pressure_pct", "brake_bias": "brake_bias_pct",
    "engine_braking": "engine_braking_pct", "fuel_load": "fuel_load_kg",
    "tyres_wear": "tyres_wear_pct", "tyres_damage": "tyres_damage_pct",
    "brakes_damage": "brakes_damage_pct", "tyre_blisters": "tyre_blisters_pct",
    "gear_box_damage": "gearbox_damage_pct", "engine_mguh_wear": "engine_mguh_wear_pct",
    "wear": "wear_pct", "life_span": "life_span_laps", "usable_life": "usable_life_laps",
    "lap_delta_time": "lap_delta_time_ms", "tyre_actual_compound": "actual_compound",
    "tyre_visual_compound": "visual_compound", "penalties_time": "penalties_time_s",
    "total_race_time": "total_race_time_s", "world_forward_dir_x": "world_forward_dir_x",
    "yaw": "yaw_rad", "pitch": "pitch_rad", "roll": "roll_rad",
    "height_of_cog_above_ground": "height_of_cog_above_ground_m",
    "front_wheels_angle": "front_wheels_angle_rad", "chassis_yaw": "chassis_yaw_rad",
    "chassis_pitch": "chassis_pitch_rad", "wheel_camber": "wheel_camber_rad",
    "wheel_camber_gain": "wheel_camber_gain_rad", "front_roll_angle": "front_roll_angle_rad",
    "rear_roll_angle": "rear_roll_angle_rad",
}
SESSION_SETTINGS = "settings"  # upstream spreads them out; ours is one tuple (SETTINGS_FIELDS)

UPSTREAM_DIFFERS = {
    # Upstream's 2024 and 2025 Session parser still reads F1 23's 56 forecast samples (EA's
    # 2024 spec has 64, and 753 bytes only add up with 64), so every field after the
    # forecast is shifted there; the fields up to and including the forecast are compared.
    ("session", 2024): "forecast", ("session", 2025): "forecast",
}


def _ours_for(name: str, fields: tuple[str, ...]) -> str | None:
    key = name if name in fields else ALIASES.get(name, name)
    base = key.removesuffix("+minutes")
    if base in fields:
        return key
    hits = [f for f in fields if f.startswith(base + "_")]
    return hits[0] if len(hits) == 1 and not key.endswith("+minutes") else None


def _equal(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, float) or isinstance(theirs, float):
        return math.isclose(float(ours), float(theirs), rel_tol=1e-6, abs_tol=1e-9)
    return bool(ours == theirs)


def compare(ours: Any, theirs: dict[str, Any], path: str, problems: list[str]) -> int:
    """Compare upstream's dict with our NamedTuple by name; returns the fields compared."""
    fields = ours._fields
    checked = 0
    minutes = {k for k in theirs if ALIASES.get(_snake(k), "").endswith("+minutes")}
    for key, value in theirs.items():
        if key in minutes:
            continue
        name = _snake(key)
        ours_name = _ours_for(name, fields)
        if ours_name is None:
            problems.append(f"{path}.{key}: no field of ours")
            continue
        mine = getattr(ours, ours_name)
        minute_key = next((k for k in minutes
                           if ALIASES[_snake(k)] == ours_name + "+minutes"), None)
        if minute_key is not None:
            value = value + theirs[minute_key] * 60_000
            checked += 1
        if isinstance(value, dict):
            checked += compare(mine, value, f"{path}.{key}", problems)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                checked += compare(mine[i], item, f"{path}.{key}[{i}]", problems)
        elif isinstance(value, list):
            checked += len(value)
            if not all(map(_equal, mine, value)) or len(mine) != len(value):
                problems.append(f"{path}.{key}: ours {mine} upstream {value}")
        else:
            checked += 1
            if isinstance(mine, bool):
                mine = int(mine)
            if not _equal(mine, value):
                problems.append(f"{path}.{key}: ours {mine!r} upstream {value!r}")
    return checked


def _split_session(theirs: dict[str, Any], cut: bool) -> dict[str, Any]:
    """Upstream's Session dict with its option fields folded into our `settings` tuple (and,
    where upstream's layout is wrong, cut after the forecast)."""
    keys = list(theirs)
    end = keys.index("m_weatherForecastSamples") + 1
    head = {k: theirs[k] for k in keys[:end]}
    if not cut:
        rest = keys[end:]
        tail_start = rest.index("m_numSessionsInWeekend") if "m_numSessionsInWeekend" in rest \
            else len(rest)
        head["m_settings"] = [theirs[k] for k in rest[:tail_start]]
        head.update({k: theirs[k] for k in rest[tail_start:]})
    return head


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize(("name", "parsed", "data"), mock_packets(), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_every_field_upstream_decodes_matches_ours(name: str, parsed: dict[str, Any],
                                                   data: bytes) -> None:
    packet = decode_packet(data)
    theirs = dict(parsed)
    header = theirs.pop("m_header")
    problems: list[str] = []
    checked = compare(packet.header, {k: (int(v) if k == "m_sessionUID" else v)
                                      for k, v in header.items()}, "header", problems)
    kind = name.split(":")[2]
    fmt = packet.header.packet_format
    if packet.header.packet_id == 3:
        body = packet.body
        assert body.code == theirs["m_eventStringCode"]
        checked += 1
        details = {_snake(k): v for k, v in theirs.get("m_eventDetails", {}).items()}
        for key, value in details.items():
            ours_key = next(k for k in body.details if k == key or k.startswith(key + "_")
                            or key.startswith(k.removesuffix("_idx")))
            assert _equal(body.details[ours_key], value), (key, body.details)
            checked += 1
    else:
        if packet.header.packet_id == 1:
            theirs = _split_session(theirs, cut=(kind, fmt) in UPSTREAM_DIFFERS
                                    or ("session", fmt) in UPSTREAM_DIFFERS)
        checked += compare(packet.body, theirs, "body", problems)
    assert not problems, problems[:10]
    assert checked >= 13  # the header alone is 12 fields
    assert encode_packet(*packet) == data
