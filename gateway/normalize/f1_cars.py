"""Per-car lap bookkeeping of the F1 normalizer, what notices a flashback (`FrameClock`) and
the bounded history that undoes it (`CarHistory`). Pure: values in, values out.

A flashback rewinds the game to an earlier frame, and the lap in progress, its invalid flag,
the pit lane and the stint go back with it. Lap Data after the flashback shows the rewound
state, but what the normalizer *accumulated* does not rewind by itself: an invalid flag seen
once stays set for the lap, a pit entry stays entered. So `CarHistory` keeps, per car, a copy
of the car's state after every change Lap Data cannot re-derive (the car first seen, a lap
closing or rewinding, a pit event or other stint change, the lap's start fuel becoming known)
— a few per lap, at most `HISTORY_PER_CAR` per car. Undoing a flashback to session time T
restores the latest copy taken at or before T. What moves every frame (sector times, the
invalid flag: the game keeps both for the lap in progress) then comes from the first Lap Data
after the flashback through the normal path, so it is exact too.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from gateway.normalize.stint import StintMachine, StintSnapshot

HISTORY_PER_CAR = 32
"""Change points kept per car: ~3 a lap, ~7 on a pit-stop lap, so several laps back, which is
further than a flashback goes (it rewinds seconds, not laps)."""


@dataclass(slots=True)
class CarLap:
    """Per-car bookkeeping of the lap in progress, and the car's stint machine."""

    lap_no: int
    last_lap_ms: int  # last_lap_time_ms when this lap started: a change = the lap is done
    fuel_start: float | None
    s1_ms: int = 0
    s2_ms: int = 0
    invalid: bool = False
    pit_in: bool = False
    pit_out: bool = False
    done: bool = False  # took the flag or is out: no more laps
    fuel_pending: bool = False  # lap start fuel not known yet, but the lap is young enough
    stint_seen: StintSnapshot | None = None  # the stint state last emitted
    machine: StintMachine = field(default_factory=StintMachine)

    def copy(self) -> CarLap:
        """A copy that shares nothing mutable (the stint machine holds only scalars)."""
        return dataclasses.replace(self, machine=copy.copy(self.machine))


class Restore(Enum):
    """What `CarHistory.restore` can say besides a restored car."""

    FORGET = "forget"  # the car was first seen after the target: as if never seen
    UNKNOWN = "unknown"  # the target is older than the history kept: cannot restore


class CarHistory:
    """Change points per car: (session time, copy of the car's state after that packet)."""

    def __init__(self, per_car: int = HISTORY_PER_CAR) -> None:
        self.per_car = per_car
        self._points: dict[int, deque[tuple[float, CarLap]]] = {}
        self._truncated: set[int] = set()  # cars whose oldest points fell off

    def remember(self, idx: int, t: float, car: CarLap) -> None:
        points = self._points.get(idx)
        if points is None:
            points = self._points[idx] = deque(maxlen=self.per_car)
        elif len(points) == self.per_car:
            self._truncated.add(idx)
        points.append((t, car.copy()))

    def restore(self, idx: int, t: float) -> CarLap | Restore:
        """Car `idx` as it was at session time `t`; the points after `t` (the undone
        timeline) are dropped. The copy kept stays in the history for a second flashback."""
        points = self._points.get(idx)
        if not points:
            return Restore.UNKNOWN
        keep = next((i for i in range(len(points) - 1, -1, -1) if points[i][0] <= t), None)
        if keep is None:
            if idx in self._truncated:
                return Restore.UNKNOWN  # and the history stays: it still fits the live state
            del self._points[idx]
            return Restore.FORGET
        for _ in range(len(points) - keep - 1):
            points.pop()
        return points[-1][1].copy()


FLBK_WINDOW_FRAMES = 120
"""For this many overall frames after an FLBK event (2 s at 60 Hz), packets still of the
timeline it undid are dropped, and a rewind of the frame id is the one the event announced
(already undone), not a second flashback."""


class FrameClock:
    """A session's header clock as last seen, which notices flashbacks: the FLBK event, or
    — when that event was lost — the frame id going back while the overall frame id goes on.
    (Both ids going back is a late datagram, not a flashback.)"""

    STALE, REWIND = "stale", "rewind"

    def __init__(self) -> None:
        self.frame, self.overall, self.time_s = 0, 0, 0.0
        self._flbk_overall: int | None = None  # overall frame id of the last FLBK event
        self._stale: tuple[int, int] | None = None  # (frame id, overall id) of an FLBK sent
        # in the timeline it undid: the rest of that frame may follow it

    def see(self, frame: int, overall: int, time_s: float) -> str:
        """A packet's header: "" (carry on), STALE (a packet of the undone timeline: do not
        feed it) or REWIND (a flashback nobody announced: undo to this packet's time, then
        call `rewound`; until then `frame` and `time_s` still say where it came from)."""
        if self._stale is not None:
            if frame >= self._stale[0] and overall - self._stale[1] <= FLBK_WINDOW_FRAMES:
                return self.STALE
            self._stale = None  # the first packet after the flashback (or a game that does
            # not rewind its frame ids after all: then nothing more is dropped)
        if overall < self.overall:
            return ""  # a late datagram of an earlier frame
        if frame < self.frame and overall > self.overall:
            if self._flbk_overall is None or overall - self._flbk_overall > FLBK_WINDOW_FRAMES:
                return self.REWIND  # the caller undoes it, then calls `rewound`
            self._flbk_overall = None  # the rewind the FLBK event announced: undone already
        self.frame, self.overall, self.time_s = frame, overall, time_s
        return ""

    def rewound(self, to_frame: int, to_s: float, *, flbk_frame: int | None,
                overall: int) -> None:
        """The clock after a flashback to (to_frame, to_s); `flbk_frame` is the FLBK event's
        own frame id when the event announced it (None when `see` found the rewind)."""
        self.frame, self.time_s = to_frame, to_s
        self.overall = max(self.overall, overall)
        if flbk_frame is not None:
            self._flbk_overall = overall
            self._stale = (flbk_frame, overall) if flbk_frame > to_frame else None
