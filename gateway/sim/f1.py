"""A small deterministic F1 24 simulator: one player car (index 0) and three AI cars race
`laps` laps of Silverstone; the player makes one pit stop (soft → medium) at the end of lap 3.

Pure and seeded: a `random.Random(seed)`, no wall clock. It yields what the game would send at
the menu rate (Lap Data, Car Telemetry, Car Status every frame; Session 2/s; SSTA, FTLP and
SEND events), format 2024, as (session_time_s, datagram).

`lap_time_s` compresses time: the cars cover the lap in about `lap_time_s` of session time,
while speeds, gears and rpm stay those of a real ~90 s lap (so a 30 s lap shows 300 kph, not
900). Lap and sector times are in session time, consistent with the header's clock.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


class _Race:
    def __init__(self, laps: int, lap_time_s: float, rng: random.Random) -> None:
        self.laps, self.rng = laps, rng
        self.scale = NOMINAL_LAP_S / lap_time_s  # sim metres per "real" metre of speed
        self.pit_lap = min(3, laps - 1)  # the player's in-lap; 0 = no stop
        self.cars = [_Car(0, 1.0, 2, fuel_kg=laps * FUEL_PER_LAP_KG + 2.0)]
        for i, pace in enumerate((0.985, 1.01, 1.025), start=1):
            self.cars.append(_Car(i, pace, i + 1 if i > 1 else 1,
                                  fuel_kg=laps * FUEL_PER_LAP_KG + 2.0))
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
            if car.idx == 0:
                self._pit_logic(car, t)
            advance = car.speed_kph / 3.6 * self.scale * dt
            car.lap_dist_m += advance
            car.total_dist_m += advance
            car.fuel_kg = max(0.0, car.fuel_kg - FUEL_PER_LAP_KG * advance / TRACK_LENGTH_M)
            self._timing(car, t, dt, advance)
        order = sorted(self.cars, key=lambda c: (c.finish_s, -c.total_dist_m))
        for pos, car in enumerate(order, start=1):
            car.position = pos

    def _pit_logic(self, car: _Car, t: float) -> None:
        x = car.lap_dist_m / TRACK_LENGTH_M
        if car.pit_stops == 0 and car.pit_status == 0 and car.lap_num == self.pit_lap \
                and x >= PIT_ENTRY:
            car.pit_status, car.pit_entry_s = 1, t
        elif car.pit_status == 1 and car.pit_stops == 0 and car.lap_num == self.pit_lap + 1 \
                and x >= PIT_BOX:
            car.pit_status, car.stop_until_s, car.speed_kph = 2, t + PIT_STOP_S, 0.0
        elif car.pit_status == 2 and t >= car.stop_until_s:
            car.pit_status, car.pit_stops = 1, car.pit_stops + 1
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
        slots = [_ZERO_LAP] * NUM_CARS
        leader = min(self.cars, key=lambda c: c.position)
        v_avg = TRACK_LENGTH_M / NOMINAL_LAP_S * self.scale  # m/s of session time
        by_pos = {c.position: c for c in self.cars}
        for car in self.cars:
            ahead = by_pos.get(car.position - 1)
            gap = (ahead.total_dist_m - car.total_dist_m) if ahead else 0.0
            in_lane = car.pit_status != 0
            driver_status = 2 if in_lane and car.pit_stops == 0 else (
                3 if car.pit_stops and car.lap_num == self.pit_lap + 1 else 4)
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
        slots = [_ZERO_TEL] * NUM_CARS
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
        slots = [_ZERO_STATUS] * NUM_CARS
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
                                "one pit stop) as a pitbox capture file.")
    p.add_argument("--out", required=True, help="capture file to write (replaced if present)")
    p.add_argument("--laps", type=int, default=5, help="race laps (default 5)")
    p.add_argument("--rate", type=float, default=4, help="menu send rate in Hz (default 4)")
    p.add_argument("--lap-time", type=float, default=15.0,
                   help="lap time in seconds of session time (default 15)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.unlink(missing_ok=True)  # the writer appends; a sample is always written fresh
    n = make_sample_capture(out, laps=args.laps, rate_hz=args.rate, lap_time_s=args.lap_time,
                            seed=args.seed)
    print(f"wrote {n} datagrams, {out.stat().st_size} bytes to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
