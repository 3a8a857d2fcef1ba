"""The stint / pit state machine of one car. Pure: values in, pit events out; no clock.

It is driven once per Lap Data packet with the car's pit status, its speed (or, when the
speed is unknown, the pit-stop timer), the number of laps it has completed and the
session time, and it yields the pit events Teamtactics' `state` doc is made of:

    pit_status 0 → 1|2            pit_entry
    in the pit area, stationary   pit_stop   (once per visit)
    moving again                  pit_go     {"stationary_ms": …}
    back to 0                     pit_exit   {"pit_lane_time_ms": …}; the stint number goes up

Stint 1 runs from the start. A car first seen in the pit lane (a race start from the pit
box, a practice run from the garage, the box joining mid-session) is *starting*: it has no
entry, so leaving the lane is not a stop — no events, and the stint stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

PIT_NONE, PIT_PITTING, PIT_AREA = 0, 1, 2  # EA's pit_status


class PitEvent(NamedTuple):
    """`code`: pit_entry | pit_stop | pit_go | pit_exit; `session_time_s`: when it was seen."""

    code: str
    session_time_s: float
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StintSnapshot:
    """What a `StintState` record carries (times are session times in s, None = not yet)."""

    stint: int
    stint_laps: int
    in_pit: bool
    pit_entry_s: float | None
    pit_exit_s: float | None
    pit_stop_s: float | None
    pit_go_s: float | None


class StintMachine:
    """One car's stint number, laps in the stint and the times of its last pit visit."""

    def __init__(self) -> None:
        self.stint = 1
        self.stint_laps = 0
        self.pit_entry_s: float | None = None
        self.pit_exit_s: float | None = None
        self.pit_stop_s: float | None = None
        self.pit_go_s: float | None = None
        self._laps_done: int | None = None  # None until the first update
        self._pit_status = PIT_NONE
        self._starting = False  # first seen in the pit lane: leaving it is no stop
        self._stop_timer_ms = 0
        self._lane_ms = 0  # longest pit-lane time seen in this visit
        self._stop_ms = 0  # longest pit-stop timer seen in this visit

    @property
    def in_pit(self) -> bool:
        return self._pit_status != PIT_NONE

    def snapshot(self) -> StintSnapshot:
        return StintSnapshot(self.stint, self.stint_laps, self.in_pit, self.pit_entry_s,
                             self.pit_exit_s, self.pit_stop_s, self.pit_go_s)

    def update(self, *, session_time_s: float, laps_done: int, pit_status: int,
               speed_kph: int | None, pit_stop_timer_ms: int = 0,
               pit_lane_time_ms: int = 0) -> list[PitEvent]:
        """Feed one observation; returns the pit events it caused, in order.

        `laps_done`: laps the car has completed (current lap number − 1, or the lap number
        once it has taken the flag); a rewind (flashback over the line) takes laps back off
        the stint. `speed_kph` None = unknown; then a rising `pit_stop_timer_ms` marks a stop.
        Pit transitions are applied before the lap count, so a lap closed in the same packet
        as a pit exit belongs to the new stint.
        """
        if self._laps_done is None:
            self._laps_done = laps_done
            self._pit_status = pit_status
            self._starting = pit_status != PIT_NONE
            self._stop_timer_ms = pit_stop_timer_ms
            self._lane_ms = pit_lane_time_ms
            return []
        events = self._pit(session_time_s, pit_status, speed_kph, pit_stop_timer_ms,
                           pit_lane_time_ms)
        self.stint_laps = max(0, self.stint_laps + laps_done - self._laps_done)
        self._laps_done = laps_done
        return events

    def _pit(self, t: float, status: int, speed_kph: int | None, stop_timer_ms: int,
             lane_ms: int) -> list[PitEvent]:
        prev, self._pit_status = self._pit_status, status
        timer_up = stop_timer_ms > self._stop_timer_ms
        self._stop_timer_ms = stop_timer_ms
        events: list[PitEvent] = []
        if prev == PIT_NONE and status != PIT_NONE:
            self._stop_ms = 0
        self._stop_ms = max(self._stop_ms, stop_timer_ms)
        if prev == PIT_NONE:
            if status == PIT_NONE:
                return events
            self._starting = False
            self.pit_entry_s, self.pit_stop_s, self.pit_go_s, self.pit_exit_s = t, None, None, None
            self._lane_ms = 0
            events.append(PitEvent("pit_entry", t, {}))
        if status != PIT_NONE:
            self._lane_ms = max(self._lane_ms, lane_ms)
            if not self._starting:
                self._stop_or_go(events, t, status, speed_kph, timer_up)
            return events
        if self._starting:  # out of the lane after a start there: nothing to report
            self._starting = False
            return events
        if self.pit_stop_s is not None and self.pit_go_s is None:
            self.pit_go_s = t
            events.append(PitEvent("pit_go", t, self._stationary(t)))
        lane = max(self._lane_ms, lane_ms)
        if not lane and self.pit_entry_s is not None:
            lane = max(0, round((t - self.pit_entry_s) * 1000))
        events.append(PitEvent("pit_exit", t, {"pit_lane_time_ms": lane}))
        self.pit_exit_s = t
        self.stint += 1
        self.stint_laps = 0
        return events

    def _stop_or_go(self, events: list[PitEvent], t: float, status: int,
                    speed_kph: int | None, timer_up: bool) -> None:
        if self.pit_stop_s is None:
            if status == PIT_AREA and (speed_kph == 0 or timer_up):
                self.pit_stop_s = t
                events.append(PitEvent("pit_stop", t, {}))
        elif self.pit_go_s is None:
            moving = speed_kph is not None and speed_kph > 0 and not timer_up
            if status != PIT_AREA or moving:
                self.pit_go_s = t
                events.append(PitEvent("pit_go", t, self._stationary(t)))

    def _stationary(self, t: float) -> dict[str, Any]:
        """How long the car stood in its box: the game's stop timer, else session times."""
        assert self.pit_stop_s is not None
        return {"stationary_ms": self._stop_ms or max(0, round((t - self.pit_stop_s) * 1000))}
