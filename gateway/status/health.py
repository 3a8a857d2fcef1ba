"""The gateway's health in one value (pure: counters and a monotonic time in, a verdict out).

The service samples a few cheap facts — datagrams seen so far, whether the uplink is connected,
rows waiting in the outbox, whether the wall clock can be trusted, whether the last commit
failed — and `HealthModel.update` turns each sample into a `Health`. The LEDs show it, the
health file carries it to the updater (which never updates while `session_live`), and nothing
here touches a socket, a file, a pin or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

CAPTURING_WINDOW_S = 5.0  # no datagram for this long: the rigs are quiet ("waiting for game data")
SESSION_WINDOW_S = 120.0  # data seen this recently: a session is live, updates wait


class State(str, Enum):
    """What the box is doing, most urgent first when several apply."""

    BOOTING = "booting"  # socket not bound / outbox not open yet
    ERROR = "error"  # the outbox cannot commit: records pile up in memory
    CLOCK_UNSYNCED = "clock_unsynced"  # no sane wall clock: no JWT, uplink waits
    OFFLINE = "offline"  # broker unreachable; buffering if rows are waiting
    ONLINE = "online"  # uplink connected


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of the service's counters. `mono_s` is a monotonic time in seconds."""

    mono_s: float
    ready: bool
    datagrams: int
    uplink_connected: bool
    outbox_pending: int
    clock_sane: bool
    commit_failed: bool = False
    outbox_fill: float | None = None  # bytes used / the outbox's budget, when it has one


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict. `fill` is outbox rows / budget, clipped to 0..1 (how full the buffer is)."""

    state: State
    capturing: bool  # a datagram arrived within CAPTURING_WINDOW_S
    session_live: bool  # a datagram arrived within SESSION_WINDOW_S: never update now
    uplink_connected: bool
    buffering: bool  # rows are waiting in the outbox while the uplink is down
    fill: float
    datagrams: int
    outbox_pending: int

    @property
    def healthy(self) -> bool:
        """Fit to keep (the updater's gate): ready, and online or at least capturing-ready."""
        return self.state in (State.ONLINE, State.OFFLINE, State.CLOCK_UNSYNCED)

    def to_dict(self) -> dict[str, object]:
        return {"state": self.state.value, "capturing": self.capturing,
                "session_live": self.session_live, "uplink_connected": self.uplink_connected,
                "buffering": self.buffering, "fill": round(self.fill, 3),
                "datagrams": self.datagrams, "outbox_pending": self.outbox_pending,
                "healthy": self.healthy}


BOOTING = Health(State.BOOTING, False, False, False, False, 0.0, 0, 0)


class HealthModel:
    """Remembers when data last arrived; everything else comes from the sample itself."""

    def __init__(self, *, outbox_budget_rows: int,
                 capturing_window_s: float = CAPTURING_WINDOW_S,
                 session_window_s: float = SESSION_WINDOW_S) -> None:
        if outbox_budget_rows <= 0:
            raise ValueError(f"outbox budget must be positive, got {outbox_budget_rows}")
        self.budget = outbox_budget_rows
        self.capturing_window_s = capturing_window_s
        self.session_window_s = session_window_s
        self._datagrams = 0
        self._last_data_s: float | None = None

    def update(self, s: Sample) -> Health:
        if s.datagrams != self._datagrams:  # a counter that moved (or restarted) means data
            self._datagrams = s.datagrams
            self._last_data_s = s.mono_s
        quiet_s = float("inf") if self._last_data_s is None else s.mono_s - self._last_data_s
        if not s.ready:
            state = State.BOOTING
        elif s.commit_failed:
            state = State.ERROR
        elif s.uplink_connected:
            state = State.ONLINE
        elif not s.clock_sane:
            state = State.CLOCK_UNSYNCED
        else:
            state = State.OFFLINE
        return Health(state=state,
                      capturing=s.ready and quiet_s <= self.capturing_window_s,
                      session_live=quiet_s <= self.session_window_s,
                      uplink_connected=s.uplink_connected,
                      buffering=not s.uplink_connected and s.outbox_pending > 0,
                      fill=min(1.0, max(0.0, s.outbox_pending / self.budget
                                        if s.outbox_fill is None else s.outbox_fill)),
                      datagrams=s.datagrams, outbox_pending=s.outbox_pending)
