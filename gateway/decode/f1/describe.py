"""Human- and machine-readable views of a decoded F1 packet, for `pitbox f1 dump`. Pure."""

from __future__ import annotations

import json
import math
from typing import Any

from gateway.decode.f1 import (
    F1Packet,
    FinalClassificationPacket,
    ParticipantsPacket,
    SessionHistoryPacket,
    TyreSetsPacket,
)
from gateway.decode.f1.packet_01_session import TRACK_NAMES, SessionData, settings_dict
from gateway.decode.f1.packet_02_lap_data import LapDataPacket
from gateway.decode.f1.packet_03_event import EventPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import CarStatusPacket

PACKET_NAMES = {0: "motion", 1: "session", 2: "lap_data", 3: "event", 4: "participants",
                5: "car_setups", 6: "car_telemetry", 7: "car_status", 8: "final_classification",
                9: "lobby_info", 10: "car_damage", 11: "session_history", 12: "tyre_sets",
                13: "motion_ex", 14: "time_trial", 15: "lap_positions", 16: "car_telemetry_2"}


def packet_name(packet_id: int) -> str:
    return PACKET_NAMES.get(packet_id, f"packet-{packet_id}")


def summary(packet: F1Packet) -> str:
    """One line: format, packet, session uid and time, and what the player's car is doing."""
    h, body = packet.header, packet.body
    me = h.player_car_idx
    what = ""
    if isinstance(body, SessionData):
        what = f"track={TRACK_NAMES.get(body.track_id, body.track_id)} laps={body.total_laps}"
    elif isinstance(body, LapDataPacket) and me < len(body.cars):
        car = body.cars[me]
        what = (f"lap={car.current_lap_num} dist={car.lap_distance_m:.0f}m "
                f"last={car.last_lap_time_ms}ms pit={car.pit_status}")
    elif isinstance(body, CarTelemetryPacket) and me < len(body.cars):
        tel = body.cars[me]
        what = f"speed={tel.speed_kph} gear={tel.gear} rpm={tel.engine_rpm}"
    elif isinstance(body, CarStatusPacket) and me < len(body.cars):
        what = f"fuel={body.cars[me].fuel_in_tank_kg:.2f}kg"
    elif isinstance(body, EventPacket):
        what = f"event={body.code} {body.details}" if body.details else f"event={body.code}"
    elif isinstance(body, ParticipantsPacket):
        names = ",".join(p.name for p in body.cars[:body.num_active_cars])
        what = f"cars={body.num_active_cars} {names}"
    elif isinstance(body, SessionHistoryPacket):
        what = f"car={body.car_idx} laps={body.num_laps} stints={body.num_tyre_stints}"
    elif isinstance(body, TyreSetsPacket):
        what = f"car={body.car_idx} fitted={body.fitted_idx}"
    elif isinstance(body, FinalClassificationPacket):
        what = f"cars={body.num_cars}"
    return (f"f1-{h.packet_format} {packet_name(h.packet_id):<13} uid={h.session_uid:016x} "
            f"t={h.session_time_s:9.3f} frame={h.overall_frame_id} {what}").rstrip()


def as_json(packet: F1Packet) -> str:
    """The whole decoded packet as one JSON object: `header` (EA's header fields, snake_case),
    `packet` (its name), then `body` (NamedTuples become objects, tuples arrays; a Session's
    rules/assist `settings` an object by name). Strict JSON: a NaN or infinite float (garbage
    from the game) is written as null."""
    body = _plain(packet.body)
    if isinstance(packet.body, SessionData):
        body["settings"] = settings_dict(packet.body)
    out = {"header": _plain(packet.header), "packet": packet_name(packet.header.packet_id),
           "body": body}
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def datagrams_from_json_lines(text: str) -> list[bytes]:
    """The datagrams of a JSON-lines packet dump: one object per line whose `message` is a
    Node.js Buffer (`{"type": "Buffer", "data": [...]}`) or a bare list of byte values, as in
    the z0mt3c/f1-telemetry-client mocks. Lines that are not such objects are skipped."""
    out = []
    for line in text.splitlines():
        try:
            message = json.loads(line)["message"]
            data = message["data"] if isinstance(message, dict) else message
            out.append(bytes(data))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
