"""A small deterministic F1 simulator. `simulate_session` (the shipped sample): one player car
(index 0) and three AI cars race `laps` laps of Silverstone; the player makes one pit stop
(soft → medium) at the end of lap 3.

Pure and seeded: a `random.Random(seed)`, no wall clock. It yields what the game would send at
the menu rate (Lap Data, Car Telemetry, Car Status every frame; Session 2/s; SSTA, FTLP and
SEND events), format 2024, as (session_time_s, datagram).

`simulate_rigs` is the venue: N rigs (own source address and port, own session), each a race
of up to 22 (2026: 24) cars that all pit once, every packet type at its real rate, in format
2023, 2024, 2025 or 2026, merged in time order as (ts_ns, src, datagram). Its extra packets
are built in f1_extra.py.

`lap_time_s` compresses time: the cars cover the lap in about `lap_time_s` of session time,
while speeds, gears and rpm stay those of a real ~90 s lap (so a 30 s lap shows 300 kph, not
900). Lap and sector times are in session time, consistent with the header's clock.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.decode.f1 import encode_packet
from gateway.decode.f1.header import Header
from gateway.decode.f1.packet_01_session import (
    SETTINGS_FIELDS,
    MarshalZone,
    SessionData,
    WeatherForecastSample,
)
from gateway.decode.f1.packet_02_lap_data import LapData, LapDataPacket
from gateway.decode.f1.packet_03_event import EventPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetry, CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import CarStatus, CarStatusPacket
from gateway.recorder import CaptureWriter

NUM_CARS = 22
TRACK_ID, TRACK_LENGTH_M = 7, 5891  # Silverstone
NOMINAL_LAP_S = 90.0  # the real lap the speeds are drawn from
PIT_LIMIT_KPH = 80
PIT_STOP_S = 3.0
PIT_ENTRY, PIT_BOX, PIT_EXIT = 0.95, 0.02, 0.06  # fractions of the lap
FUEL_PER_LAP_KG = 1.6
SOFT, MEDIUM = (18, 16), (19, 17)  # (actual C3 / C2, visual soft / medium)
EPOCH_NS = 1_717_236_000_000_000_000  # 2024-06-01 10:00 UTC: the sample's fixed wall clock
SAMPLE_SRC = "10.0.0.21:52301"

_ZERO_LAP = LapData._make([0] * len(LapData._fields))
_ZERO_TEL = CarTelemetry(0, 0.0, 0.0, 0.0, 0, 0, 0, False, 0, 0, (0, 0, 0, 0), (0, 0, 0, 0),
                         (0, 0, 0, 0), 0, (0.0, 0.0, 0.0, 0.0), (0, 0, 0, 0))
_ZERO_STATUS = CarStatus._make([0] * len(CarStatus._fields))


def _profile(x: float) -> float:
    """Relative speed around the lap (x = fraction 0..1): straights and corners."""
    return 1.0 + 0.28 * math.sin(2 * math.pi * 3 * x) + 0.12 * math.sin(2 * math.pi * 7 * x + 1)


_MEAN_INV = sum(1 / _profile(i / 1000) for i in range(1000)) / 1000
_V_NOMINAL_KPH = TRACK_LENGTH_M / NOMINAL_LAP_S * _MEAN_INV * 3.6


@dataclass
class _Car:
    idx: int
    pace: float  # > 1 is slower
    grid_position: int
    lap_num: int = 1
    lap_dist_m: float = 0.0
    total_dist_m: float = 0.0
    lap_start_s: float = 0.0
    sector: int = 0
    s1_ms: int = 0
    s2_ms: int = 0
    last_lap_ms: int = 0
    finished: bool = False
    finish_s: float = math.inf  # race order: finishers first, by when they crossed
    speed_kph: float = 0.0
    prev_speed_kph: float = 0.0
    fuel_kg: float = 0.0
    tyres: tuple[int, int] = SOFT
    tyre_age_laps: int = 0
    pit_status: int = 0
    pit_stops: int = 0
    pit_entry_s: float = 0.0
    stop_until_s: float = -1.0
    position: int = 1
    pit_lap: int = 0  # the in-lap of this car's one stop; 0 = no stop
    history: list[tuple[int, int, int, int]] = field(default_factory=list)  # lap, s1, s2, s3 ms
    stints: list[tuple[int, int, int]] = field(default_factory=list)  # end lap, actual, visual
    lap_start_positions: list[int] = field(default_factory=list)  # position as each lap began
    best_lap_ms: int = 0


class _Race:
    """The race. `num_cars` > 4 adds cars of evenly spread pace; `all_pit` gives every car
    one stop (on laps spread over the race), not only the player (car 0)."""

    def __init__(self, laps: int, lap_time_s: float, rng: random.Random, *, num_cars: int = 4,
                 all_pit: bool = False) -> None:
        self.laps, self.rng, self.all_pit = laps, rng, all_pit
        self.scale = NOMINAL_LAP_S / lap_time_s  # sim metres per "real" metre of speed
        self.pit_lap = min(3, laps - 1)  # the player's in-lap; 0 = no stop
        fuel = laps * FUEL_PER_LAP_KG + 2.0
        self.cars = [_Car(0, 1.0, 2, fuel_kg=fuel, pit_lap=self.pit_lap)]
        paces = [0.985, 1.01, 1.025] + [0.99 + 0.045 * i / num_cars for i in range(4, num_cars)]
        for i, pace in enumerate(paces[:num_cars - 1], start=1):
            pit_lap = 1 + i % (laps - 1) if all_pit and laps > 1 else 0
            self.cars.append(_Car(i, pace, i + 1 if i > 1 else 1, fuel_kg=fuel,
                                  pit_lap=pit_lap))
        self.best_ms = 0
        self.events: list[EventPacket] = []

    def _target_kph(self, car: _Car, t: float) -> float:
        x = car.lap_dist_m / TRACK_LENGTH_M
        if car.finished:
            return 0.0
        if car.pit_status == 2:
            return 0.0
        if car.pit_status == 1:
            return float(PIT_LIMIT_KPH)
        launch = min(1.0, 0.2 + t / 4.0)  # standing start
        return _V_NOMINAL_KPH * _profile(x) / car.pace * launch * self.rng.uniform(0.99, 1.01)

    def step(self, t: float, dt: float) -> None:
        for car in self.cars:
            car.prev_speed_kph = car.speed_kph
            car.speed_kph = self._target_kph(car, t)
            if car.idx == 0 or self.all_pit:
                self._pit_logic(car, t)
            advance = car.speed_kph / 3.6 * self.scale * dt
            car.lap_dist_m += advance
            car.total_dist_m += advance
            car.fuel_kg = max(0.0, car.fuel_kg - FUEL_PER_LAP_KG * advance / TRACK_LENGTH_M)
            self._timing(car, t, dt, advance)
        order = sorted(self.cars, key=lambda c: (c.finish_s, -c.total_dist_m))
        for pos, car in enumerate(order, start=1):
            car.position = pos
            if len(car.lap_start_positions) < car.lap_num:
                car.lap_start_positions.append(pos)

    def _pit_logic(self, car: _Car, t: float) -> None:
        x = car.lap_dist_m / TRACK_LENGTH_M
        if car.pit_stops == 0 and car.pit_status == 0 and car.lap_num == car.pit_lap \
                and x >= PIT_ENTRY:
            car.pit_status, car.pit_entry_s = 1, t
        elif car.pit_status == 1 and car.pit_stops == 0 and car.lap_num == car.pit_lap + 1 \
                and x >= PIT_BOX:
            car.pit_status, car.stop_until_s, car.speed_kph = 2, t + PIT_STOP_S, 0.0
        elif car.pit_status == 2 and t >= car.stop_until_s:
            car.pit_status, car.pit_stops = 1, car.pit_stops + 1
            car.stints.append((car.lap_num - 1, *car.tyres))
            car.tyres, car.tyre_age_laps = MEDIUM, 0
        elif car.pit_status == 1 and car.pit_stops == 1 and x >= PIT_EXIT:
            car.pit_status = 0

    def _timing(self, car: _Car, t: float, dt: float, advance: float) -> None:
        """Sector and lap crossings; the crossing time is interpolated inside the frame."""
        third = TRACK_LENGTH_M / 3
        if car.sector == 0 and car.lap_dist_m >= third:
            car.sector, car.s1_ms = 1, round((t - car.lap_start_s) * 1000)
        if car.sector == 1 and car.lap_dist_m >= 2 * third:
            car.sector, car.s2_ms = 2, round((t - car.lap_start_s) * 1000) - car.s1_ms
        if car.lap_dist_m < TRACK_LENGTH_M:
            return
        overshoot_s = (car.lap_dist_m - TRACK_LENGTH_M) / max(advance, 1e-9) * dt
        crossed = t - overshoot_s
        car.last_lap_ms = round((crossed - car.lap_start_s) * 1000)
        car.history.append((car.last_lap_ms, car.s1_ms, car.s2_ms,
                            car.last_lap_ms - car.s1_ms - car.s2_ms))
        car.best_lap_ms = min(car.best_lap_ms or car.last_lap_ms, car.last_lap_ms)
        car.lap_start_s, car.lap_dist_m, car.sector, car.s1_ms, car.s2_ms = crossed, \
            car.lap_dist_m - TRACK_LENGTH_M, 0, 0, 0
        car.tyre_age_laps += 1
        if not self.best_ms or car.last_lap_ms < self.best_ms:
            self.best_ms = car.last_lap_ms
            self.events.append(EventPacket("FTLP", {"vehicle_idx": car.idx,
                                                    "lap_time_s": car.last_lap_ms / 1000}))
        if car.lap_num == self.laps:
            car.finished, car.finish_s, car.lap_dist_m = True, crossed, 0.0
        else:
            car.lap_num += 1

    # -- packets -------------------------------------------------------------------------

    def lap_data(self, t: float) -> LapDataPacket:
        slots = [_ZERO_LAP] * max(NUM_CARS, len(self.cars))
        leader = min(self.cars, key=lambda c: c.position)
        v_avg = TRACK_LENGTH_M / NOMINAL_LAP_S * self.scale  # m/s of session time
        by_pos = {c.position: c for c in self.cars}
        for car in self.cars:
            ahead = by_pos.get(car.position - 1)
            gap = (ahead.total_dist_m - car.total_dist_m) if ahead else 0.0
            in_lane = car.pit_status != 0
            driver_status = 2 if in_lane and car.pit_stops == 0 else (
                3 if car.pit_stops and car.lap_num == car.pit_lap + 1 else 4)
            slots[car.idx] = LapData(
                car.last_lap_ms, 0 if car.finished else round((t - car.lap_start_s) * 1000),
                car.s1_ms, car.s2_ms, max(0, round(gap / v_avg * 1000)),
                max(0, round((leader.total_dist_m - car.total_dist_m) / v_avg * 1000)),
                car.lap_dist_m, car.total_dist_m, 0.0, car.position, car.lap_num,
                car.pit_status, car.pit_stops, car.sector, False, 0, 0, 0, 0, 0,
                car.grid_position, driver_status, 3 if car.finished else 2, in_lane,
                round((t - car.pit_entry_s) * 1000) if in_lane else 0,
                round((t - car.stop_until_s + PIT_STOP_S) * 1000) if car.pit_status == 2 else 0,
                0, 0.0, 255)
        return LapDataPacket(tuple(slots), 255, 255)

    def telemetry(self) -> CarTelemetryPacket:
        slots = [_ZERO_TEL] * max(NUM_CARS, len(self.cars))
        for car in self.cars:
            v = car.speed_kph
            accel = v - car.prev_speed_kph
            gear = 0 if v < 1 else min(8, 1 + int(v / 42))
            band = 42.0 if gear < 8 else 60.0
            rpm = 4000 if gear == 0 else int(7000 + 5000 * min(1.0, (v - (gear - 1) * 42) / band))
            brake = min(1.0, max(0.0, -accel / 15)) if v > 1 else 0.0
            tyre = 95 + int(self.rng.uniform(-3, 3))
            slots[car.idx] = CarTelemetry(
                int(v), 0.0 if brake else min(1.0, 0.6 + v / 800), round(0.3 * math.sin(
                    car.lap_dist_m / 90), 3), brake, 0, gear, rpm,
                v > 280 and car.lap_num > 1, min(100, rpm * 100 // 13000),
                (1 << min(15, rpm * 15 // 13000)) - 1, (550, 550, 600, 600),
                (tyre, tyre, tyre + 2, tyre + 2), (100, 100, 102, 102), 110,
                (22.5, 22.5, 24.5, 24.5), (0, 0, 0, 0))
        return CarTelemetryPacket(tuple(slots), 255, 255, 0)

    def status(self) -> CarStatusPacket:
        slots = [_ZERO_STATUS] * max(NUM_CARS, len(self.cars))
        for car in self.cars:
            laps_left = self.laps - car.lap_num + 1 - car.lap_dist_m / TRACK_LENGTH_M
            slots[car.idx] = CarStatus(
                1, 1, 1, 56, int(car.pit_status != 0), car.fuel_kg, 110.0,
                car.fuel_kg / FUEL_PER_LAP_KG - laps_left, 13000, 4000, 8, 0, 0,
                car.tyres[0], car.tyres[1], car.tyre_age_laps, 0, 550_000.0, 120_000.0,
                3_000_000.0, 1, 0.0, 0.0, 0.0, 0)
        return CarStatusPacket(tuple(slots))

    def session(self, t: float, duration_s: int) -> SessionData:
        zones = tuple(MarshalZone(i / 16, 0) for i in range(16))
        forecast = tuple(WeatherForecastSample(15, m, 1, 32, 2, 24, 2, 5) for m in (0, 5, 10))
        settings = dict.fromkeys(SETTINGS_FIELDS, 0)
        settings.update(ai_difficulty=90, game_mode=3, rule_set=1, time_of_day_min=14 * 60,
                        speed_units_lead_player=1, car_damage=2, collisions=2, safety_car=2)
        return SessionData(
            1, 32, 24, self.laps, TRACK_LENGTH_M, 15, TRACK_ID, 0,
            max(0, duration_s - int(t)), duration_s, PIT_LIMIT_KPH, 0, 0, 255, 0, len(zones),
            zones, 0, 0, len(forecast), forecast, tuple(settings[k] for k in SETTINGS_FIELDS),
            1, (15,), TRACK_LENGTH_M / 3, 2 * TRACK_LENGTH_M / 3)


def simulate_session(*, laps: int = 5, rate_hz: float = 20, seed: int = 1,
                     lap_time_s: float = 90.0, session_uid: int | None = None,
                     ) -> Iterator[tuple[float, bytes]]:
    """(session_time_s, datagram) for a whole race, in send order. Deterministic per seed."""
    if laps < 1 or rate_hz <= 0 or lap_time_s <= 0:
        raise ValueError("laps, rate_hz and lap_time_s must be positive")
    rng = random.Random(seed)
    uid = session_uid if session_uid is not None else rng.getrandbits(64)
    race = _Race(laps, lap_time_s, rng)
    dt = 1.0 / rate_hz
    session_every = max(1, round(rate_hz / 2))
    duration_s = int(laps * lap_time_s * 2)
    player = race.cars[0]
    frame = 0

    def header(packet_id: int, t: float) -> Header:
        return Header(2024, 24, 1, 17, 1, packet_id, uid, t, frame, frame, 0, 255)

    race.events.append(EventPacket("SSTA", {}))
    max_frames = int(laps * lap_time_s * 3 * rate_hz) + 1000  # bounded even if a bug stalls
    while frame < max_frames:
        t = frame * dt
        if frame:
            race.step(t, dt)
        if frame % session_every == 0:
            yield t, encode_packet(header(1, t), race.session(t, duration_s))
        for event in race.events:
            yield t, encode_packet(header(3, t), event)
        race.events.clear()
        yield t, encode_packet(header(2, t), race.lap_data(t))
        yield t, encode_packet(header(6, t), race.telemetry())
        yield t, encode_packet(header(7, t), race.status())
        frame += 1
        if player.finished:
            break
    t = frame * dt
    yield t, encode_packet(header(3, t), EventPacket("SEND", {}))


GAME_YEARS = {2023: 0, 2024: 25, 2025: 25, 2026: 25}
"""gameYear as F1 25 writes it when set to send each format (0 for 2023; see f1-udp.md)."""
RIG_RATES_HZ = {1: 2.0, 4: 0.2, 5: 2.0, 10: 10.0, 11: 20.0, 12: 20.0, 15: 1.0}
"""Send rates of the packets not sent every frame (f1-udp.md); Session History and Tyre Sets
cycle through the cars, one car per packet. Lap Positions (15) only from format 2025 on."""
MENU_RATE_IDS = (0, 2, 6, 7, 13)  # every frame; plus 16 (Car Telemetry 2) in format 2026


def rig_src(rig: int) -> str:
    """The source address of simulated rig `rig` (0-based): its own address and port."""
    return f"10.0.0.{21 + rig}:{52301 + rig}"


def _rig_stream(rig: int, fmt: int, laps: int, hz: float, lap_time_s: float, num_cars: int,
                seed: int) -> Iterator[tuple[float, bytes]]:
    """(session_time_s, datagram) of one rig's whole race, every packet type at its rate."""
    from gateway.sim import f1_extra as extra  # imported here: it builds on _Race (this module)

    rng = random.Random(seed * 1000 + rig)
    uid = rng.getrandbits(64)
    race = _Race(laps, lap_time_s, rng, num_cars=num_cars, all_pit=True)
    player = 0
    dt = 1.0 / hz
    duration_s = int(laps * lap_time_s * 2)
    sent = dict.fromkeys(RIG_RATES_HZ, -1)
    cycle = dict.fromkeys((11, 12), 0)
    frame = 0

    def packet(packet_id: int, t: float, body: Any) -> tuple[float, bytes]:
        h = Header(fmt, GAME_YEARS[fmt], 1, 10, 1, packet_id, uid, t, frame, frame, player, 255)
        return t, encode_packet(h, body)

    race.events.append(EventPacket("SSTA", {}))
    max_frames = int(laps * lap_time_s * 3 * hz) + 1000  # bounded even if a bug stalls
    while frame < max_frames:
        t = frame * dt
        if frame:
            race.step(t, dt)
        for packet_id, rate in RIG_RATES_HZ.items():
            count = int(t * rate + 1e-9)
            if count == sent[packet_id] or (packet_id == 15 and fmt < 2025):
                continue
            sent[packet_id] = count
            if packet_id == 1:
                session = race.session(t, duration_s)
                if fmt == 2023:  # F1 23 numbers the race 10, not 15
                    session = session._replace(session_type=10)
                yield packet(1, t, session)
            elif packet_id == 4:
                yield packet(4, t, extra.participants(race, player))
            elif packet_id == 5:
                yield packet(5, t, extra.setups(race, player))
            elif packet_id == 10:
                yield packet(10, t, extra.damage(race))
            elif packet_id == 15:
                yield packet(15, t, extra.lap_positions(race))
            else:
                car = race.cars[cycle[packet_id] % len(race.cars)]
                cycle[packet_id] += 1
                yield packet(packet_id, t, extra.session_history(race, car) if packet_id == 11
                             else extra.tyre_sets(race, car))
        for event in race.events:
            yield packet(3, t, event)
        race.events.clear()
        yield packet(0, t, extra.motion(race, dt))
        yield packet(2, t, race.lap_data(t))
        yield packet(6, t, race.telemetry())
        yield packet(7, t, race.status())
        yield packet(13, t, extra.motion_ex(race, player))
        if fmt >= 2026:
            yield packet(16, t, extra.telemetry_2(race))
        frame += 1
        if all(car.finished for car in race.cars):
            break
    t = frame * dt
    yield packet(3, t, EventPacket("CHQF", {}))
    yield packet(8, t, extra.final_classification(race))
    yield packet(3, t, EventPacket("SEND", {}))


def simulate_rigs(n_rigs: int, fmt: int = 2025, laps: int = 5, hz: float = 60.0, *,
                  lap_time_s: float = 90.0, num_cars: int = 20, seed: int = 1,
                  start_ns: int = EPOCH_NS) -> Iterator[tuple[int, str, bytes]]:
    """(ts_ns, src, datagram) of `n_rigs` rigs racing at once, merged in time order.

    Each rig is its own game (its own session uid, source address and port, see rig_src)
    running a `laps`-lap race of `num_cars` cars, every car making one pit stop (soft →
    medium), in packet format `fmt` (2023–2026) at the menu rate `hz` (60 = the busiest
    setting): every packet of a race at its real rate (f1-udp.md), i.e. 356 packets/s per
    rig at 60 Hz in format 2025, 416 in 2026. Lobby Info and Time Trial are not sent in a race;
    Final Classification once at the end. Rigs start a few ms apart, so their packets
    interleave. Lazy and deterministic per seed; `lap_time_s` compresses time as in
    simulate_session.
    """
    if n_rigs < 1 or fmt not in GAME_YEARS or laps < 1 or hz <= 0 or lap_time_s <= 0 \
            or not 4 <= num_cars <= (24 if fmt >= 2026 else 22):
        raise ValueError("need n_rigs >= 1, fmt in 2023..2026, laps >= 1, hz > 0, "
                         "lap_time_s > 0 and 4 <= num_cars <= the format's car count")

    def stream(rig: int) -> Iterator[tuple[int, str, bytes]]:
        offset_ns = start_ns + rig * 1_370_000  # rigs start 1.37 ms apart
        src = rig_src(rig)
        for t, datagram in _rig_stream(rig, fmt, laps, hz, lap_time_s, num_cars, seed):
            yield offset_ns + round(t * 1e9), src, datagram

    return heapq.merge(*(stream(rig) for rig in range(n_rigs)), key=lambda item: item[0])


def write_rigs_capture(path: str | Path, n_rigs: int, fmt: int = 2025, laps: int = 5,
                       hz: float = 60.0, *, lap_time_s: float = 90.0, num_cars: int = 20,
                       seed: int = 1) -> int:
    """`simulate_rigs` written to a capture file (appended to, if it exists), each datagram
    with its rig's source address and send time, as `pitbox record` would have written it.
    Returns the number of datagrams."""
    n = 0
    with CaptureWriter(path) as writer:
        for ts_ns, src, datagram in simulate_rigs(n_rigs, fmt, laps, hz, lap_time_s=lap_time_s,
                                                  num_cars=num_cars, seed=seed):
            writer.write(datagram, src, ts_ns)
            n += 1
    return n


def make_sample_capture(path: str | Path, *, laps: int = 5, rate_hz: float = 4,
                        lap_time_s: float = 15.0, seed: int = 1) -> int:
    """Write a simulated race as a capture file (fixed wall clock EPOCH_NS + session time, one
    source address). Returns the number of datagrams. The defaults keep the shipped sample
    under 1.5 MB."""
    n = 0
    with CaptureWriter(path) as writer:
        for t, datagram in simulate_session(laps=laps, rate_hz=rate_hz, seed=seed,
                                            lap_time_s=lap_time_s):
            writer.write(datagram, SAMPLE_SRC, EPOCH_NS + round(t * 1e9))
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.sim.f1 --out PATH`: write a simulated race as a pitbox capture."""
    p = argparse.ArgumentParser(prog="python -m gateway.sim.f1",
                                description="Write a simulated F1 24 race (one player car, "
                                "one pit stop) as a pitbox capture file; with --rigs, N rigs "
                                "racing at once, every packet type at its real rate, in any "
                                "format 2023-2026.")
    p.add_argument("--out", required=True, help="capture file to write (replaced if present)")
    p.add_argument("--laps", type=int, default=5, help="race laps (default 5)")
    p.add_argument("--rate", type=float, default=None,
                   help="menu send rate in Hz (default 4; 60 with --rigs)")
    p.add_argument("--lap-time", type=float, default=15.0,
                   help="lap time in seconds of session time (default 15)")
    p.add_argument("--rigs", type=int, default=0,
                   help="simulate this many rigs (distinct source ports), each a race with "
                   "--cars cars that all pit once; 0 = the single-rig sample (default)")
    p.add_argument("--format", type=int, default=2025, choices=sorted(GAME_YEARS),
                   help="packet format with --rigs (default 2025)")
    p.add_argument("--cars", type=int, default=20, help="cars per race with --rigs (default 20)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.unlink(missing_ok=True)  # the writer appends; a sample is always written fresh
    if args.rigs:
        try:
            next(iter(simulate_rigs(args.rigs, args.format, args.laps, args.rate or 60.0,
                                    lap_time_s=args.lap_time, num_cars=args.cars)))
        except ValueError as exc:
            p.error(str(exc))
        n = write_rigs_capture(out, args.rigs, args.format, args.laps, args.rate or 60.0,
                               lap_time_s=args.lap_time, num_cars=args.cars, seed=args.seed)
    else:
        n = make_sample_capture(out, laps=args.laps, rate_hz=args.rate or 4,
                                lap_time_s=args.lap_time, seed=args.seed)
    print(f"wrote {n} datagrams, {out.stat().st_size} bytes to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
