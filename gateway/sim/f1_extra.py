"""The simulator's packets beyond Lap Data, Telemetry, Status, Session and events: Motion,
Participants, Car Setups, Final Classification, Car Damage, Session History, Tyre Sets, Motion
Ex, Lap Positions and Car Telemetry 2, built from a running `_Race` (see f1.py). Pure.

Values are plausible, not physics: positions on a circle the length of the track, g-forces
from speed changes, tyre wear from tyre age. Every builder returns a body for any format
(fields a format lacks are ignored by its encoder; car tuples are padded to its car count).
"""

from __future__ import annotations

import math

from gateway.decode.f1.packet_00_motion import CarMotion, MotionPacket
from gateway.decode.f1.packet_04_participants import LiveryColour, Participant, ParticipantsPacket
from gateway.decode.f1.packet_05_car_setups import CarSetup, CarSetupsPacket
from gateway.decode.f1.packet_08_final_classification import (
    FinalClassification,
    FinalClassificationPacket,
)
from gateway.decode.f1.packet_10_car_damage import CarDamage, CarDamagePacket
from gateway.decode.f1.packet_11_session_history import (
    LapHistory,
    SessionHistoryPacket,
    TyreStint,
)
from gateway.decode.f1.packet_12_tyre_sets import TyreSet, TyreSetsPacket
from gateway.decode.f1.packet_13_motion_ex import MotionEx
from gateway.decode.f1.packet_15_lap_positions import LapPositionsPacket
from gateway.decode.f1.packet_16_car_telemetry_2 import CarTelemetry2, CarTelemetry2Packet
from gateway.sim.f1 import MEDIUM, NOMINAL_LAP_S, SOFT, TRACK_LENGTH_M, _Car, _Race

G = 9.81
POINTS = (25, 18, 15, 12, 10, 8, 6, 4, 2, 1)


def _g(value: float) -> float:
    """A g-force as the game reports it: thousandths, within ±30 g (2026 sends int16 mg)."""
    return round(max(-30.0, min(30.0, value)), 3)


def _angle(car: _Car) -> float:
    return 2 * math.pi * car.lap_dist_m / TRACK_LENGTH_M


def motion(race: _Race, dt: float) -> MotionPacket:
    radius = TRACK_LENGTH_M / (2 * math.pi)
    slots = []
    for car in race.cars:
        a = _angle(car)
        v = car.speed_kph / 3.6
        fwd = (-math.sin(a), math.cos(a))
        slots.append(CarMotion(
            radius * math.cos(a), 0.0, radius * math.sin(a), v * fwd[0], 0.0, v * fwd[1],
            round(fwd[0] * 32767), 0, round(fwd[1] * 32767), round(fwd[1] * 32767), 0,
            round(-fwd[0] * 32767), _g(v * v / radius / G),
            _g((car.speed_kph - car.prev_speed_kph) / 3.6 / dt / G), 1.0,
            a + math.pi / 2, 0.0, 0.0))
    return MotionPacket(tuple(slots))


def participants(race: _Race, player: int) -> ParticipantsPacket:
    cars = tuple(Participant(
        int(car.idx != player), car.idx, 255 if car.idx != player else 0, car.idx // 2, 0,
        car.idx + 2, 10 + car.idx % 80, f"Driver {car.idx + 1:02d}",
        int(car.idx == player), 1, 1 if car.idx == player else 255,
        tech_level=0, num_colours=1, livery_colours=(LiveryColour(200, 20 * (car.idx % 12), 40),))
        for car in race.cars)
    return ParticipantsPacket(len(cars), cars)


def setups(race: _Race, player: int) -> CarSetupsPacket:
    """The player's setup; other cars' setups are blank (as the game sends them online)."""
    blank = CarSetup._make([0] * len(CarSetup._fields))
    mine = CarSetup(25, 22, 60, 55, -3.0, -1.5, 0.05, 0.2, 30, 10, 8, 5, 30, 45, 100, 56,
                    23.5, 23.5, 25.0, 25.0, 6, race.cars[player].fuel_kg, engine_braking_pct=60)
    return CarSetupsPacket(tuple(mine if car.idx == player else blank for car in race.cars),
                           25.0)


def damage(race: _Race) -> CarDamagePacket:
    slots = []
    for car in race.cars:
        wear = round(min(99.0, car.tyre_age_laps * 2.5 + 0.4), 3)
        slots.append(CarDamage((wear, wear, wear * 1.2, wear * 1.2), (int(wear),) * 4,
                               (1, 1, 1, 1), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3, 0,
                               0, tyre_blisters_pct=(0, 0, int(wear // 10), int(wear // 10))))
    return CarDamagePacket(tuple(slots))


def session_history(race: _Race, car: _Car) -> SessionHistoryPacket:
    laps = [LapHistory(lap, s1, s2, s3, 0x0F) for lap, s1, s2, s3 in car.history]
    best = min(range(len(laps)), key=lambda i: laps[i].lap_time_ms) + 1 if laps else 0
    current = [] if car.finished else [LapHistory(0, car.s1_ms, car.s2_ms, 0, 0x0F)]
    stints = [TyreStint(*s) for s in car.stints] + [TyreStint(255, *car.tyres)]
    return SessionHistoryPacket(car.idx, len(laps) + len(current), len(stints), best, best,
                                best, best, tuple(laps + current), tuple(stints))


def tyre_sets(race: _Race, car: _Car) -> TyreSetsPacket:
    fitted = 0 if car.tyres == SOFT else 1
    sets = []
    for i in range(20):
        actual, visual = (SOFT if i % 3 == 0 else MEDIUM) if i < 13 else (7, 7)
        if i == 0:
            actual, visual = SOFT
        elif i == 1:
            actual, visual = MEDIUM
        wear = min(100, car.tyre_age_laps * 3) if i == fitted else (30 if i == 0 else 0)
        sets.append(TyreSet(actual, visual, wear, int(i != 0 or fitted == 0), 15, 20, 18,
                            0 if i == fitted else 350, int(i == fitted)))
    return TyreSetsPacket(car.idx, tuple(sets), fitted)


def motion_ex(race: _Race, player: int) -> MotionEx:
    car = race.cars[player]
    v = car.speed_kph / 3.6
    four = (v, v, v, v)
    return MotionEx((20.0, 20.0, 15.0, 15.0), (0.0,) * 4, (0.0,) * 4, four, (0.01,) * 4,
                    (0.002,) * 4, (1500.0,) * 4, (800.0,) * 4, 0.3, 0.0, 0.0, v, 0.0, 0.1, 0.0,
                    0.0, 0.0, 0.0, 0.0, (3500.0,) * 4, 0.03, 0.07, 0.0, 0.0,
                    _angle(car), 0.01, (-0.05,) * 4, (0.0,) * 4)


def lap_positions(race: _Race) -> LapPositionsPacket:
    laps = max(len(c.lap_start_positions) for c in race.cars)
    rows = tuple(tuple(c.lap_start_positions[lap] if lap < len(c.lap_start_positions) else 0
                       for c in race.cars) for lap in range(min(laps, 50)))
    return LapPositionsPacket(len(rows), 0, rows)


def final_classification(race: _Race) -> FinalClassificationPacket:
    rows = []
    for car in race.cars:
        stints = [*car.stints, (car.lap_num, *car.tyres)]
        pos = car.position
        rows.append(FinalClassification(
            pos, len(car.history), car.grid_position, POINTS[pos - 1] if pos <= 10 else 0,
            car.pit_stops, 3 if car.finished else 2, car.best_lap_ms,
            car.finish_s if car.finished else NOMINAL_LAP_S * race.laps, 0, 0, len(stints),
            tuple(s[1] for s in stints), tuple(s[2] for s in stints),
            tuple(s[0] for s in stints), result_reason=3 if car.finished else 0))
    return FinalClassificationPacket(len(rows), tuple(rows))


def telemetry_2(race: _Race) -> CarTelemetry2Packet:
    slots = tuple(CarTelemetry2(int(car.speed_kph > 250), 1, 0, int(car.position > 1),
                                int(car.speed_kph > 300 and car.position > 1), 0, 1, 0)
                  for car in race.cars)
    return CarTelemetry2Packet(slots)
