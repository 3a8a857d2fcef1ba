"""The game-neutral records every stage after normalize speaks.

Every record carries where it came from (`rig`, `session_id`) and when it was captured, in
wall time (`ts_ns`, may be wrong until the clock syncs) and monotonic time (`mono_ns`).
The device id and the sequence number are added by the outbox, which owns the sequence.
`session_id` is the Teamtactics collection key of the session (see ARCHITECTURE.md), so a
lap can be filed without waiting for its session record.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Record:
    rig: str
    session_id: str
    ts_ns: int
    mono_ns: int

    KIND: ClassVar[str] = ""
    PRIORITY: ClassVar[int] = 9  # lower leaves first: session < lap < event < state < sample

    def to_dict(self) -> dict[str, Any]:
        # One C-level attrgetter call, then only the tuple fields are turned into lists.
        names, values, tuples = _shape(type(self))
        out = dict(zip(names, values(self)))
        for name in tuples:
            value = out[name]
            if isinstance(value, tuple):
                out[name] = list(value)
        return out


def fields_of(cls: type[Record]) -> tuple[str, ...]:
    """The field names of a record class, in the order `values_of` gives their values."""
    return _shape(cls)[0]


def values_of(cls: type[Record]) -> Callable[[Any], tuple[Any, ...]]:
    """A getter of all the values of a `cls` record as a tuple, in `fields_of` order: the
    outbox packs each record as this array (one C-level call, no dict on the hot path)."""
    return _shape(cls)[1]


_Shape = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]], tuple[str, ...]]
_SHAPES: dict[type[Any], _Shape] = {}


def _shape(cls: type[Any]) -> _Shape:
    """(field names, a getter of all their values, the fields that may hold a tuple)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        fields = dataclasses.fields(cls)
        names = tuple(f.name for f in fields)
        getter = operator.attrgetter(*names)
        # Annotations are strings here (`from __future__ import annotations`).
        tuples = tuple(f.name for f in fields if str(f.type).startswith("tuple"))
        shape = _SHAPES[cls] = (names, getter, tuples)
    return shape


@dataclass(frozen=True, slots=True)
class Session(Record):
    """A session as Teamtactics' `info` doc needs it."""

    game: str
    track: str
    car: str
    session_type: str
    team: str
    drivers: tuple[str, ...]
    total_laps: int
    time_left_s: int
    historical: bool = False  # replayed from a capture or a file, not live from a rig
    weather: str = ""  # "clear", "light_rain", … ("" = not said)
    formula: str = ""  # F1: "f1_modern", "f2", …; iRacing: the series
    duration_s: int = 0  # planned length of a timed session
    track_temp_c: float | None = None
    air_temp_c: float | None = None
    KIND: ClassVar[str] = "session"
    PRIORITY: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class Lap(Record):
    """One completed lap of one car. Times in ms; fuel in kg (F1) or litres (iRacing: `fuel_unit`)."""

    car_idx: int
    lap_no: int
    lap_time_ms: int
    sector_ms: tuple[int, ...]
    valid: bool
    position: int
    fuel_level: float | None
    fuel_used: float | None
    fuel_unit: str
    tyre_compound: str
    tyre_age_laps: int
    pit_in: bool
    pit_out: bool
    stint: int
    lap_in_stint: int
    own_car: bool  # the car this rig drives (F1 player car, iRacing team car): Teamtactics' laps
    # Game-specific extras of the lap doc (iRacing: driver, track temp, pit stamps, service
    # flags, repair and tow times, fuel added); optional so older messages still decode.
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    KIND: ClassVar[str] = "lap"
    PRIORITY: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class Event(Record):
    """Something that happened at a moment: pit entry/exit, stop/start in the box, flags…

    `code` is a pitbox name (`pit_entry`, `pit_exit`, `pit_stop`, `pit_go`, `session_start`,
    `session_end`, `fastest_lap`, …); `game_code` keeps the game's own code where there is one.
    """

    car_idx: int
    code: str
    game_code: str
    lap_no: int
    session_time_s: float
    detail: dict[str, Any]
    KIND: ClassVar[str] = "event"
    PRIORITY: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class StintState(Record):
    """The stint state of one car, as Teamtactics' `state` doc holds it."""

    car_idx: int
    stint: int
    stint_laps: int
    in_pit: bool
    pit_entry_s: float | None
    pit_exit_s: float | None
    pit_stop_s: float | None
    pit_go_s: float | None
    own_car: bool  # only the own car's state becomes the session's `state` doc
    # Game-specific extras of the state doc (iRacing: current driver, tow / repair times,
    # session ids, last lap time and fuel); optional so older messages still decode.
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    KIND: ClassVar[str] = "state"
    PRIORITY: ClassVar[int] = 3


@dataclass(frozen=True, slots=True)
class Sample(Record):
    """A downsampled telemetry frame of a player car. `None` = not available (restricted)."""

    car_idx: int
    lap_no: int
    lap_distance_m: float
    speed_kph: int
    gear: int
    rpm: int
    throttle: float
    brake: float
    fuel_level: float | None
    tyre_compound: str
    steer: float = 0.0  # -1 full left … 1 full right
    position: int = 0
    fuel_laps: float | None = None  # laps of fuel left, as the game estimates it
    tyre_age_laps: int = 0
    tyre_temp_c: tuple[int, ...] = ()  # surface, per wheel (the game's wheel order)
    tyre_wear_pct: tuple[float, ...] = ()  # per wheel; () = not known yet
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)  # game-specific: DRS, ERS …
    KIND: ClassVar[str] = "sample"
    PRIORITY: ClassVar[int] = 5


RECORD_TYPES: dict[str, type[Record]] = {
    cls.KIND: cls for cls in (Session, Lap, Event, StintState, Sample)
}


def from_dict(kind: str, data: dict[str, Any]) -> Record:
    """Rebuild a record from its `to_dict()` form; raises KeyError/TypeError on a bad body."""
    cls = RECORD_TYPES[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)  # type: ignore[arg-type]  # checked against the fields above
