"""Builds irsdk memory-map files so the shim runs against a scripted "live" sim on Linux.

The layout is iRacing's (see ../shared/reference/iracing.md): a 112-byte header, the
session-info YAML, the variable headers, then three row buffers written round-robin, each
with its tick count. pyirsdk's test-file mode maps the file and sees every rewrite, so a
test changes the car with `sim.step(OnPitRoad=True, ...)`: the row goes to the two oldest
buffers (pyirsdk reads the second-newest: a torn newest row is never read), and a new YAML
bumps `sessionInfoUpdate`. The file keeps its size: it is rewritten in place, never truncated
under a live mmap.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HEADER_BYTES = 112
VAR_HEADER_BYTES = 144
YAML_BYTES = 32 * 1024
NUM_BUF = 3
CARS = 64
TYPES = {"c": 0, "?": 1, "i": 2, "I": 3, "f": 4, "d": 5}
SIZES = {"c": 1, "?": 1, "i": 4, "I": 4, "f": 4, "d": 8}

# (name, struct code, count, unit): the shim's variable set and a few others.
VARIABLES: tuple[tuple[str, str, int, str], ...] = (
    ("SessionTime", "d", 1, "s"), ("SessionTimeOfDay", "f", 1, "s"), ("SessionNum", "i", 1, ""),
    ("SessionState", "i", 1, ""), ("SessionTick", "i", 1, ""), ("LapCompleted", "i", 1, ""),
    ("Lap", "i", 1, ""), ("LapLastLapTime", "f", 1, "s"), ("FuelLevel", "f", 1, "l"),
    ("FuelUsePerHour", "f", 1, "kg/h"), ("OnPitRoad", "?", 1, ""),
    ("PlayerCarInPitStall", "?", 1, ""), ("PlayerTrackSurface", "i", 1, ""),
    ("Speed", "f", 1, "m/s"), ("TrackTemp", "f", 1, "C"), ("PitSvFlags", "I", 1, ""),
    ("PitSvFuel", "f", 1, "l"), ("PlayerCarTowTime", "f", 1, "s"), ("PitRepairLeft", "f", 1, "s"),
    ("PitOptRepairLeft", "f", 1, "s"), ("PlayerCarPosition", "i", 1, ""),
    ("RPM", "f", 1, "revs/min"),
    ("CarIdxLapCompleted", "i", CARS, ""), ("CarIdxTrackSurface", "i", CARS, ""),
    ("CarIdxOnPitRoad", "?", CARS, ""), ("CarIdxLastLapTime", "f", CARS, "s"),
    ("CarIdxPosition", "i", CARS, ""),
)


def session_yaml(*, track: str = "spa combined", session_id: int = 7001,
                 subsession_id: int = 9001, team_racing: int = 1, car_idx: int = 3,
                 my_user_id: int = 111, driver_user_id: int = 111, driver_name: str = "Ann Able",
                 team_id: int = 42, team_name: str = "Pit  Crew", car_path: str = "mx5 mx52016",
                 sessions: Iterable[tuple[int, str, str, str]] = (
                     (0, "Practice", "unlimited", "600.0000 sec"),
                     (1, "Race", "20", "3600.0000 sec"))) -> str:
    """Session-info YAML as the sim writes it (sections separated by blank lines)."""
    rows = "".join(
        f" - SessionNum: {n}\n   SessionLaps: {laps}\n   SessionTime: {t}\n"
        f"   SessionType: {kind}\n" for n, kind, laps, t in sessions)
    return (
        "---\nWeekendInfo:\n"
        f" TrackName: {track}\n TrackID: 163\n SessionID: {session_id}\n"
        f" SubSessionID: {subsession_id}\n TeamRacing: {team_racing}\n"
        " WeekendOptions:\n  Date: 2026-11-23\n\n"
        f"SessionInfo:\n Sessions:\n{rows}\n"
        "DriverInfo:\n"
        f" DriverCarIdx: {car_idx}\n DriverUserID: {my_user_id}\n"
        " DriverCarFuelMaxLtr: 40.000\n DriverCarMaxFuelPct: 1.000\n"
        " DriverCarFuelKgPerLtr: 0.750\n Drivers:\n"
        " - CarIdx: 0\n   UserName: Pace Car\n   UserID: -1\n   TeamID: 0\n"
        "   TeamName: Pace Car\n   CarPath: safety pcporsche911cup\n   CarIsPaceCar: 1\n"
        f" - CarIdx: {car_idx}\n   UserName: {driver_name}\n   UserID: {driver_user_id}\n"
        f"   TeamID: {team_id}\n   TeamName: {team_name}\n   CarPath: {car_path}\n"
        "   CarIsPaceCar: 0\n\n")


def default_values(car_idx: int = 3) -> dict[str, Any]:
    arr_i = [-1] * CARS
    values: dict[str, Any] = {
        "SessionTime": 0.0, "SessionTimeOfDay": 50400.0, "SessionNum": 0, "SessionState": 4,
        "SessionTick": 0, "LapCompleted": -1, "Lap": 0, "LapLastLapTime": 0.0,
        "FuelLevel": 30.0, "FuelUsePerHour": 20.0, "OnPitRoad": False,
        "PlayerCarInPitStall": False, "PlayerTrackSurface": 3, "Speed": 50.0,
        "TrackTemp": 28.5, "PitSvFlags": 0, "PitSvFuel": 0.0, "PlayerCarTowTime": 0.0,
        "PitRepairLeft": 0.0, "PitOptRepairLeft": 0.0, "PlayerCarPosition": 1, "RPM": 6000.0,
        "CarIdxLapCompleted": list(arr_i), "CarIdxTrackSurface": list(arr_i),
        "CarIdxOnPitRoad": [False] * CARS, "CarIdxLastLapTime": [-1.0] * CARS,
        "CarIdxPosition": [0] * CARS}
    values["CarIdxTrackSurface"][car_idx] = 3
    return values


class IrsdkFile:
    """A memory-map file on disk that a test rewrites like the sim would."""

    def __init__(self, path: Path, yaml_text: str, values: dict[str, Any] | None = None,
                 variables: tuple[tuple[str, str, int, str], ...] = VARIABLES) -> None:
        self.path = path
        self.variables = variables
        self.offsets: dict[str, int] = {}
        row = 0
        for name, code, count, _unit in variables:
            self.offsets[name] = row
            row += SIZES[code] * count
        self.buf_len = row
        self.var_off = HEADER_BYTES + YAML_BYTES
        self.buf_off = self.var_off + VAR_HEADER_BYTES * len(variables)
        self.size = self.buf_off + NUM_BUF * self.buf_len
        self.ticks = [0] * NUM_BUF
        self.tick = 0
        self.info_update = 1
        self.values = values or default_values()
        path.write_bytes(bytes(self.size))
        self._write(0, self._header())
        self._write(self.var_off, b"".join(self._var_header(v) for v in variables))
        self.set_yaml(yaml_text, bump=False)
        self.step()

    def _write(self, offset: int, data: bytes) -> None:
        with open(self.path, "r+b") as fh:  # in place: a live mmap must never see truncation
            fh.seek(offset)
            fh.write(data)

    def _header(self) -> bytes:
        head = struct.pack("<10i", 2, 1, 60, self.info_update, YAML_BYTES, HEADER_BYTES,
                           len(self.variables), self.var_off, NUM_BUF, self.buf_len)
        head += bytes(8)
        for i in range(NUM_BUF):
            head += struct.pack("<4i", self.ticks[i], self.buf_off + i * self.buf_len, 0, 0)
        return head.ljust(HEADER_BYTES, b"\0")

    def _var_header(self, var: tuple[str, str, int, str]) -> bytes:
        name, code, count, unit = var
        return struct.pack("<3i?3x32s64s32s", TYPES[code], self.offsets[name], count, False,
                           name.encode(), b"", unit.encode())

    def set_yaml(self, text: str, *, bump: bool = True) -> None:
        raw = text.encode("utf-8")
        assert len(raw) < YAML_BYTES, "session info larger than the test map's region"
        self._write(HEADER_BYTES, raw.ljust(YAML_BYTES, b"\0"))
        if bump:
            self.info_update += 1
            self._write(0, self._header())

    def _row(self) -> bytes:
        row = bytearray(self.buf_len)
        for name, code, count, _unit in self.variables:
            value = self.values[name]
            items = value if count > 1 else [value]
            struct.pack_into("<" + code * count, row, self.offsets[name], *items)
        return bytes(row)

    def step(self, **changes: Any) -> None:
        """Apply `changes` and publish one tick the reader will see."""
        self.values.update(changes)
        row = self._row()
        for _ in range(2):  # the reader takes the second-newest buffer
            slot = self.ticks.index(min(self.ticks))
            self.tick += 1
            self.ticks[slot] = self.tick
            self._write(self.buf_off + slot * self.buf_len, row)
            self._write(48 + slot * 16, struct.pack("<i", self.tick))

    def set_car(self, car_idx: int, **arrays: Any) -> None:
        """Set per-car array entries, e.g. `set_car(3, CarIdxLapCompleted=4)` (no publish)."""
        for name, value in arrays.items():
            self.values[name][car_idx] = value


class TeamSim:
    """One team car seen from several PCs: each PC's map shows what that PC's sim shows.

    The PC of the driver in the car sees the player variables (fuel, lap counter, pit road,
    speed); a teammate's PC reads 0 there (the sim's anti-cheat delay) and sees the car only
    through the `CarIdx*` arrays and `LapLastLapTime`. `step(**car)` changes the car and
    rewrites every PC's file; `after_step(session_time)` lets a test wait for the shims.
    """

    def __init__(self, folder: Path, users: dict[str, tuple[int, str]], driver: str, *,
                 car_idx: int = 3, after_step: Any = None) -> None:
        self.users, self.driver, self.car_idx = users, driver, car_idx
        self.after_step = after_step
        self.car: dict[str, Any] = {
            "SessionTime": 10.0, "SessionTimeOfDay": 50_400.0, "SessionNum": 0,
            "LapCompleted": 0, "LapLastLapTime": 0.0, "surface": 3, "OnPitRoad": False,
            "PlayerCarInPitStall": False, "Speed": 50.0, "FuelLevel": 40.0, "PitSvFlags": 0,
            "PitSvFuel": 0.0, "PlayerCarTowTime": 0.0, "PitRepairLeft": 0.0,
            "PitOptRepairLeft": 0.0}
        self.files = {pc: IrsdkFile(folder / f"{pc}.irsdk", self._yaml(pc), self._values(pc))
                      for pc in users}

    def _yaml(self, pc: str) -> str:
        user_id, _ = self.users[pc]
        driver_id, driver_name = self.users[self.driver]
        return session_yaml(car_idx=self.car_idx, my_user_id=user_id, driver_user_id=driver_id,
                            driver_name=driver_name)

    def _values(self, pc: str) -> dict[str, Any]:
        c, idx = self.car, self.car_idx
        v = default_values(idx)
        v.update({k: c[k] for k in ("SessionTime", "SessionTimeOfDay", "SessionNum",
                                    "LapLastLapTime")})
        v["CarIdxLapCompleted"][idx] = c["LapCompleted"]
        v["CarIdxTrackSurface"][idx] = c["surface"]
        v["CarIdxOnPitRoad"][idx] = c["OnPitRoad"]
        v["CarIdxLastLapTime"][idx] = c["LapLastLapTime"] or -1.0
        v["CarIdxPosition"][idx] = 1
        if pc == self.driver:
            v.update({k: c[k] for k in ("LapCompleted", "OnPitRoad", "PlayerCarInPitStall",
                                        "Speed", "FuelLevel", "PitSvFlags", "PitSvFuel",
                                        "PlayerCarTowTime", "PitRepairLeft",
                                        "PitOptRepairLeft")})
            v["PlayerTrackSurface"] = c["surface"]
        else:
            v.update(LapCompleted=0, FuelLevel=0.0, Speed=0.0, OnPitRoad=False,
                     PlayerTrackSurface=-1, FuelUsePerHour=0.0)
        return v

    def step(self, n: int = 1, dt: float = 0.1, **car: Any) -> None:
        for _ in range(n):
            self.car.update(car)
            car = {}
            self.car["SessionTime"] = round(self.car["SessionTime"] + dt, 3)
            self.car["SessionTimeOfDay"] = self.car["SessionTimeOfDay"] + dt
            for pc, f in self.files.items():
                f.values = self._values(pc)
                f.step()
            if self.after_step is not None:
                self.after_step(self.car["SessionTime"])

    def lap(self, lap_time_s: float, *, fuel_used_l: float = 3.0, lag_steps: int = 3) -> None:
        """Cross the line; the lap time shows up `lag_steps` later, as in the sim."""
        self.step(LapCompleted=self.car["LapCompleted"] + 1,
                  FuelLevel=round(self.car["FuelLevel"] - fuel_used_l, 3))
        self.step(lag_steps - 1)
        self.step(LapLastLapTime=lap_time_s)

    def swap_driver(self, pc: str) -> None:
        """The next driver takes the car: every PC's session info says so."""
        self.driver = pc
        for name, f in self.files.items():
            f.set_yaml(self._yaml(name))


def write_ibt(path: Path, yaml_text: str, rows: list[dict[str, Any]], *,
              variables: tuple[tuple[str, str, int, str], ...] = VARIABLES[:22],
              start_epoch_s: int = 1_790_000_000) -> Path:
    """An `.ibt` telemetry file: header, disk sub-header, variable headers, YAML, one row per
    60 Hz tick (player car only, so no `CarIdx*` arrays by default)."""
    offsets, row_len = {}, 0
    for name, code, count, _unit in variables:
        offsets[name] = row_len
        row_len += SIZES[code] * count
    var_off = HEADER_BYTES + 32
    yaml_raw = yaml_text.encode("utf-8")
    yaml_off = var_off + VAR_HEADER_BYTES * len(variables)
    data_off = yaml_off + len(yaml_raw)
    head = struct.pack("<10i", 2, 1, 60, 0, len(yaml_raw), yaml_off, len(variables), var_off, 1,
                       row_len) + bytes(8)
    head += struct.pack("<4i", len(rows), data_off, 0, 0) + bytes(48)
    disk = struct.pack("<Qddii", start_epoch_s, 0.0, len(rows) / 60, 0, len(rows))
    var_headers = b"".join(
        struct.pack("<3i?3x32s64s32s", TYPES[code], offsets[name], count, False, name.encode(),
                    b"", unit.encode()) for name, code, count, unit in variables)
    body = bytearray()
    for values in rows:
        row = bytearray(row_len)
        for name, code, count, _unit in variables:
            value = values[name]
            struct.pack_into("<" + code * count, row, offsets[name],
                             *(value if count > 1 else [value]))
        body += row
    path.write_bytes(head + disk + var_headers + yaml_raw + bytes(body))
    return path
