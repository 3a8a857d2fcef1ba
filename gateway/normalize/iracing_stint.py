"""The iRacing stint / pit state machine of one team car. Pure: observations in, outputs out.

Teamtactics semantics (see ../shared/reference/iracing.md), driven by one `Observation` per
telemetry update of the car, whoever's PC it came from:

- **Stints.** Stint 1 from the first observation (a box that joins mid-race starts with
  `stint_laps = laps completed`, as Teamtactics does). A pit exit starts a new stint; so
  does a tow (`PlayerCarTowTime` turning non-zero), and the pit exit that follows a tow
  does not count again. On a teammate's PC the tow countdown reads 0, so there (no fuel
  view) a car that leaves the world from the track and comes back in its stall without its
  lap count going back (that is a reset) was towed: its time out of the world is the tow time.
  A driver swap leaves the world from the stall, so it never looks like this.
- **Pit visit.** `pit_entry` when the car reaches pit road; `pit_stop` the first time it
  stands in its stall (speed < 1 m/s where the speed is known); `pit_go` each time it moves
  off again (the last restart is kept); `pit_exit` when it leaves pit road, with lane time,
  stationary time (0 for a drive-through), service flags snapshot at entry, fuel added,
  repair and optional repair time. Stamps are session time; time-of-day stamps ride along.
- **Race start from the pit box** (first seen on pit road) and a **reset / rejoin** (car
  back in the world in its stall): no entry and no stop; leaving reports a `pit_exit` with
  `from_pit_box`, and the stint stays.
- **Driver swap.** The car leaves the world (surface -1) and pit road reads false while it
  sits in the stall: ignored. The visit goes on when the car is back with the next driver.
- **Laps.** When the completed-lap count goes up, the lap's stint, lap in stint and fuel are
  fixed at once, but the record waits for `LapLastLapTime` to change (it lags 5–30 ticks)
  or `LAP_TIME_WAIT_S` of the injected clock (the box injects the session time). The
  out-lap (-1 → 0) and resets make no lap.
- **Fuel.** A rise in the tank is a refuel: added to the visit and the lap, and that lap's
  `fuel_used` is None (never negative); consumption comes from laps without a refuel. A rise
  is measured from the lowest level since the tank last rose, so a refuel read at 60 rows/s
  (0.04 l a row) adds up, while a gauge jittering by less than `REFUEL_MIN_L` never does.
- **Flush.** When the session or the file ends, laps still waiting for their time close
  without one (`flush()`), as when the time never comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

SURFACE_NOT_IN_WORLD, SURFACE_STALL = -1, 1
LAP_TIME_WAIT_S = 1.0  # LapLastLapTime lags ≤ ~0.5 s behind LapCompleted
STANDING_MPS = 1.0  # Teamtactics' "stopped" threshold
REFUEL_MIN_L = 0.2  # a tank this far above its lowest level is fuel going in (not jitter)


@dataclass(frozen=True, slots=True)
class Observation:
    """One update of the car. `None` = this PC cannot see it (not the in-car client)."""

    session_time_s: float
    time_of_day_s: float
    lap_completed: int
    last_lap_time_s: float  # ≤ 0: unknown
    surface: int  # CarIdxTrackSurface of the car: -1 not in world, 1 stall, 2 pit approach, 3 track
    on_pit_road: bool
    in_stall: bool
    speed_mps: float | None = None
    fuel_level_l: float | None = None
    pit_sv_flags: int = 0
    pit_sv_fuel_l: float = 0.0
    tow_time_s: float = 0.0
    repair_left_s: float = 0.0
    opt_repair_left_s: float = 0.0
    track_temp_c: float | None = None
    position: int = 0
    driver: str = ""


class IrEvent(NamedTuple):
    code: str  # pit_entry | pit_stop | pit_go | pit_exit | tow | driver_change | reset
    session_time_s: float
    lap_no: int
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClosedLap:
    lap_no: int
    lap_time_s: float  # 0: the time never came
    stint: int
    lap_in_stint: int
    fuel_level_l: float | None
    fuel_used_l: float | None
    pit_in: bool
    pit_out: bool
    position: int
    detail: dict[str, Any]


@dataclass(slots=True)
class _Visit:
    entry_s: float | None = None
    entry_tod: float | None = None
    stop_s: float | None = None
    go_s: float | None = None
    exit_s: float | None = None
    flags: int = 0
    fuel_request_l: float = 0.0
    fuel_added_l: float = 0.0
    repair_s: float = 0.0
    opt_repair_s: float = 0.0
    stopped: bool = False
    swapped: bool = False  # the car left the world during this visit (driver swap)


@dataclass(slots=True)
class _LapBook:
    """The lap in progress and what its record will carry."""

    start_fuel: float | None = None
    refuelled_l: float = 0.0
    pit_in: bool = False
    pit_out: bool = False
    pending: dict[str, Any] = field(default_factory=dict)  # pit/tow values for the lap doc


@dataclass(slots=True)
class _Waiting:
    lap: ClosedLap
    old_time_s: float
    since_s: float


class IRacingStint:
    """Stint number, lap in stint and the last pit visit of one car in one session."""

    def __init__(self) -> None:
        self.stint = 1
        self.stint_laps = 0
        self.phase = "none"  # none (unseen) | track | lane | start (first seen in the pit)
        self.visit = _Visit()
        self.last_visit = _Visit()
        self._book = _LapBook()
        self._waiting: list[_Waiting] = []
        self._prev: Observation | None = None
        self._towing = False
        self.tow_time_s = 0.0  # the last tow's time, for the state doc
        self._done = -1  # laps completed at the last in-world observation
        self._fuel_low: float | None = None  # lowest tank level since it last rose
        self._filling = False  # a refuel is under way: every further rise is fuel going in
        self._left_track_s: float | None = None  # when the car left the world from the track

    @property
    def in_pit(self) -> bool:
        return self.phase in ("lane", "start")

    def update(self, obs: Observation, now_s: float) -> list[IrEvent | ClosedLap]:
        """Feed one observation; `now_s` is the injected clock (any monotonic seconds)."""
        out: list[IrEvent | ClosedLap] = []
        prev, self._prev = self._prev, obs
        if prev is None:
            self._first(obs)
            return out
        if obs.driver and prev.driver and obs.driver != prev.driver:
            out.append(self._event("driver_change", obs, {"from": prev.driver, "to": obs.driver}))
        self._tow(obs, out)
        if obs.surface != SURFACE_NOT_IN_WORLD:
            if prev.surface == SURFACE_NOT_IN_WORLD:
                self._back_in_world(obs, out)
            self._pit(prev, obs, out)
        else:
            self._left_world(prev, obs)
        self._fuel(obs)
        self._laps(prev, obs, now_s, out)
        return out

    def _first(self, obs: Observation) -> None:
        in_pit = obs.on_pit_road or obs.surface in (SURFACE_NOT_IN_WORLD, SURFACE_STALL)
        self.phase = "start" if in_pit else "track"
        self._done = obs.lap_completed
        self.stint_laps = max(0, obs.lap_completed)
        self._book = _LapBook(start_fuel=obs.fuel_level_l, pit_out=self.phase == "start")
        self._fuel_low = obs.fuel_level_l

    def _event(self, code: str, obs: Observation, detail: dict[str, Any]) -> IrEvent:
        return IrEvent(code, round(obs.session_time_s, 3), max(0, obs.lap_completed) + 1, detail)

    # -- tow -------------------------------------------------------------------------------

    def _tow(self, obs: Observation, out: list[IrEvent | ClosedLap]) -> None:
        if obs.tow_time_s <= 0:
            self._towing = False
            return
        if self._towing:
            return
        self._towing = True
        self._towed(obs, obs.tow_time_s, out, {})

    def _towed(self, obs: Observation, tow_s: float, out: list[IrEvent | ClosedLap],
               detail: dict[str, Any]) -> None:
        self._left_track_s = None
        self.tow_time_s = round(tow_s, 1)
        out.append(self._event("tow", obs, {"tow_time_s": self.tow_time_s, **detail}))
        self._book.pending["tow_time_s"] = self.tow_time_s
        self._new_stint()
        self.phase = "start"  # the car reappears in its stall: leaving it is no second stint

    def _left_world(self, prev: Observation, obs: Observation) -> None:
        if self.phase == "lane":
            self.visit.swapped = True  # a swap leaves the world from the stall: not a tow
        elif (self.phase == "track" and prev.surface != SURFACE_NOT_IN_WORLD
              and not self._towing):
            self._left_track_s = obs.session_time_s

    def _back_in_world(self, obs: Observation, out: list[IrEvent | ClosedLap]) -> None:
        """A teammate's view of a tow: gone from the track, back in the stall, laps kept."""
        left_s, self._left_track_s = self._left_track_s, None
        if (left_s is None or obs.fuel_level_l is not None or obs.surface != SURFACE_STALL
                or obs.lap_completed < self._done):  # the in-car view has the countdown
            return
        self._towed(obs, obs.session_time_s - left_s, out, {"seen_as": "back_in_stall"})

    def _new_stint(self) -> None:
        self.stint += 1
        self.stint_laps = 0

    # -- pit road --------------------------------------------------------------------------

    def _pit(self, prev: Observation, obs: Observation, out: list[IrEvent | ClosedLap]) -> None:
        if self._towing:  # on its way to the stall: nothing on track or pit road counts
            return
        t = round(obs.session_time_s, 3)
        back_in_world = prev.surface == SURFACE_NOT_IN_WORLD
        if self.phase == "track":
            if not obs.on_pit_road:
                return
            if back_in_world and obs.surface == SURFACE_STALL:  # reset / rejoin in the stall
                self.phase = "start"  # (a lap count back to -1 reports the reset below)
                return
            self.phase = "lane"
            self.visit = _Visit(entry_s=t, entry_tod=obs.time_of_day_s, flags=obs.pit_sv_flags,
                                fuel_request_l=round(obs.pit_sv_fuel_l, 2))
            self._book.pit_in = True
            out.append(self._event("pit_entry", obs, {
                "time_of_day_s": obs.time_of_day_s, "pit_sv_flags": obs.pit_sv_flags,
                "pit_sv_fuel_l": round(obs.pit_sv_fuel_l, 2)}))
            return
        if obs.on_pit_road:
            if self.phase == "lane":
                self._stop_or_go(obs, t, out)
            return
        self._exit(obs, t, out)

    def _stop_or_go(self, obs: Observation, t: float, out: list[IrEvent | ClosedLap]) -> None:
        v = self.visit
        if obs.repair_left_s > 0 and not v.repair_s:
            v.repair_s = round(obs.repair_left_s, 1)
        if obs.opt_repair_left_s > 0 and not v.opt_repair_s:
            v.opt_repair_s = round(obs.opt_repair_left_s, 1)
        if obs.speed_mps is not None:  # the in-car client: speed decides, the stall starts it
            standing = obs.speed_mps < STANDING_MPS and (
                v.stopped or obs.in_stall or obs.surface == SURFACE_STALL)
        else:  # a teammate's view: the stall surface is all there is
            standing = obs.surface == SURFACE_STALL or obs.in_stall
        if standing and not v.stopped:
            v.stopped = True
            if v.stop_s is None:
                v.stop_s = t
                out.append(self._event("pit_stop", obs, {"time_of_day_s": obs.time_of_day_s}))
        elif not standing and v.stopped:
            v.stopped = False
            v.go_s = t
            out.append(self._event("pit_go", obs, {"time_of_day_s": obs.time_of_day_s}))

    def _exit(self, obs: Observation, t: float, out: list[IrEvent | ClosedLap]) -> None:
        self._book.pit_out = True
        if self.phase == "start":
            self.phase = "track"
            self.visit = _Visit(exit_s=t)
            self.last_visit = self.visit
            out.append(self._event("pit_exit", obs, {"time_of_day_s": obs.time_of_day_s,
                                                    "from_pit_box": True}))
            return
        v = self.visit
        if v.stopped:
            v.go_s, v.stopped = t, False
            out.append(self._event("pit_go", obs, {"time_of_day_s": obs.time_of_day_s}))
        v.exit_s = t
        self.phase = "track"
        self.last_visit = v
        detail = {
            "time_of_day_s": obs.time_of_day_s, "entry_time_of_day_s": v.entry_tod,
            "lane_time_s": round(t - v.entry_s, 3) if v.entry_s is not None else None,
            "stationary_s": round(v.go_s - v.stop_s, 3)
            if v.stop_s is not None and v.go_s is not None else 0.0,
            "drive_through": v.stop_s is None, "pit_sv_flags": v.flags,
            "fuel_added_l": round(v.fuel_added_l, 2), "repair_s": v.repair_s,
            "opt_repair_s": v.opt_repair_s, "driver_swap": v.swapped, "stint": self.stint + 1}
        out.append(self._event("pit_exit", obs, detail))
        self._book.pending.update({"pit_entry_s": v.entry_s, "pit_exit_s": t,
                                   "pit_stop_s": v.stop_s, "pit_go_s": v.go_s,
                                   "pit_sv_flags": v.flags, "repair_s": v.repair_s,
                                   "opt_repair_s": v.opt_repair_s})
        self._new_stint()

    # -- fuel and laps ---------------------------------------------------------------------

    def _fuel(self, obs: Observation) -> None:
        """Kept across observations without fuel: a refuel seen only afterwards still counts."""
        level = obs.fuel_level_l
        if level is None:
            return
        low = self._fuel_low
        if low is None or level < low:  # burning fuel (or a first reading): a new floor
            self._fuel_low, self._filling = level, False
            return
        added = level - low
        if added >= REFUEL_MIN_L or (self._filling and added > 0):
            self._fuel_low, self._filling = level, True
            self._book.refuelled_l += added
            if self.phase == "lane":
                self.visit.fuel_added_l += added

    def _laps(self, prev: Observation, obs: Observation, now_s: float,
              out: list[IrEvent | ClosedLap]) -> None:
        done, before = obs.lap_completed, self._done
        if obs.surface == SURFACE_NOT_IN_WORLD:
            done = before  # out of the world (swap, reset in progress): counters mean nothing
        if done == before + 1 and done >= 1:
            out.extend(w.lap for w in self._waiting)  # a second crossing before the time came
            self._waiting = [_Waiting(self._close(obs), prev.last_lap_time_s, now_s)]
        elif done != before:
            out.extend(w.lap for w in self._waiting)
            self._waiting = []
            if done < before and before >= 0:
                out.append(self._event("reset", obs, {"laps_completed_before": before}))
            self._book = _LapBook(start_fuel=obs.fuel_level_l, pit_out=self.in_pit)
        self._done = done
        still = []
        for w in self._waiting:
            t = obs.last_lap_time_s
            if t > 0 and t != w.old_time_s:
                out.append(_with_time(w.lap, t))
            elif now_s - w.since_s >= LAP_TIME_WAIT_S:
                out.append(w.lap)
            else:
                still.append(w)
        self._waiting = still

    def flush(self) -> list[ClosedLap]:
        """Laps still waiting for their time, closed without one: the session or file ended."""
        laps = [w.lap for w in self._waiting]
        self._waiting = []
        return laps

    def _close(self, obs: Observation) -> ClosedLap:
        """The lap just completed, fixed at the line (its time may follow)."""
        book = self._book
        self.stint_laps += 1
        level = obs.fuel_level_l
        used = None
        if level is not None and book.start_fuel is not None and book.refuelled_l == 0:
            used = round(book.start_fuel - level, 3) if book.start_fuel >= level else None
        detail = {"driver": obs.driver, "session_time_s": round(obs.session_time_s, 3),
                  "time_of_day_s": obs.time_of_day_s, "track_temp_c": obs.track_temp_c,
                  "fuel_added_l": round(book.refuelled_l, 2), **book.pending}
        lap = ClosedLap(obs.lap_completed, 0.0, self.stint, self.stint_laps,
                        None if level is None else round(level, 3), used, book.pit_in,
                        book.pit_out, obs.position, detail)
        self._book = _LapBook(start_fuel=level, pit_out=self.in_pit)
        return lap


def _with_time(lap: ClosedLap, t: float) -> ClosedLap:
    return ClosedLap(lap.lap_no, round(t, 4), lap.stint, lap.lap_in_stint, lap.fuel_level_l,
                     lap.fuel_used_l, lap.pit_in, lap.pit_out, lap.position, lap.detail)
