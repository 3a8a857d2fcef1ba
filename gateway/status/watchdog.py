"""Whether the gateway may tell systemd it is alive (WATCHDOG=1). Pure: readings and a monotonic
time in, a verdict out.

A ping must mean the data path works, not only that the loop sending it turns. The service takes
a `Progress` reading about once per ping interval; `Watchdog.check` returns "" when every part
shows progress or is legitimately idle, else the reason it is not:

- **capture**: every socket still open. A quiet rig sends nothing and that is fine; a closed
  socket never reopens by itself.
- **tasks**: the uplink pump, the idle-rig sweep and the status task are still running.
- **commits**: working, or failing because the disk is full — a state, not a crash (evict, alarm
  LED, keep capturing; a restart would not make room and would lose what waits in memory). Any
  other commit failure gets `commit_grace_s` to clear (an SD hiccup) and then stops the pings,
  so systemd restarts the gateway on a fresh connection. A bug of ours in the commit stops
  them at once. The grace is timed per kind: a full disk that turns into an I/O error starts
  it then (the service's log lines time the whole episode on their own clock).
- **uplink**: disconnected is idle (the publisher reconnects by itself). Connected, the pump's
  loop must turn (`Pump.turns` moves) within `uplink_stall_s`; an idle pump turns every 0.2 s,
  one whose every in-flight slot waits on a PUBACK does not. A broker that never acknowledges
  looks the same as one of our bugs. The long default (2 min) outlasts paho's own check of a
  silently dead link (1.5 x the 60 s keepalive), so that costs a reconnect, not a restart; a
  pump stuck for good is restarted every ~2.5 min (this plus WatchdogSec=30).

Once a reason appears the pings stop until it clears; systemd kills the gateway after
WatchdogSec without one (and restarts it: the unit has no start limit and never reboots the box).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Commit = Literal["ok", "disk_full", "io_error", "bug"]
COMMIT_GRACE_S = 60.0
UPLINK_STALL_S = 120.0


@dataclass(frozen=True, slots=True)
class Progress:
    """One reading of the data path. `mono_s` is a monotonic time in seconds."""

    mono_s: float
    capture_open: bool
    dead_tasks: tuple[str, ...]
    commit: Commit  # the worst outbox commit since the previous reading
    uplink_connected: bool
    uplink_turned: bool  # the pump's loop turned since the previous reading


class Watchdog:
    """Remembers since when commits fail this way and when the connected pump last turned."""

    def __init__(self, *, commit_grace_s: float = COMMIT_GRACE_S,
                 uplink_stall_s: float = UPLINK_STALL_S) -> None:
        self.commit_grace_s = commit_grace_s
        self.uplink_stall_s = uplink_stall_s
        self._failing: tuple[Commit, float] | None = None  # how commits fail, since when
        self._pump_seen_s: float | None = None  # connected and turning, last seen at

    def check(self, p: Progress) -> str:
        """"" if the gateway may ping now; otherwise why not."""
        commit = self._commit(p)
        uplink = self._uplink(p)  # both run every time: they keep their own clocks
        if not p.capture_open:
            return "a capture socket is closed"
        if p.dead_tasks:
            return f"task {', '.join(p.dead_tasks)} ended"
        return commit or uplink

    def _commit(self, p: Progress) -> str:
        if p.commit in ("ok", "bug"):
            self._failing = None
            return "a bug in the outbox commit" if p.commit == "bug" else ""
        if self._failing is None or self._failing[0] != p.commit:
            self._failing = (p.commit, p.mono_s)  # a full disk and a failing one: each its own
        failing_s = p.mono_s - self._failing[1]
        if p.commit == "io_error" and failing_s > self.commit_grace_s:
            return f"outbox commits failing for {failing_s:.0f} s"
        return ""

    def _uplink(self, p: Progress) -> str:
        if not p.uplink_connected:
            self._pump_seen_s = None
            return ""
        if p.uplink_turned or self._pump_seen_s is None:
            self._pump_seen_s = p.mono_s
            return ""
        stuck_s = p.mono_s - self._pump_seen_s
        if stuck_s > self.uplink_stall_s:
            return f"the uplink pump has not turned for {stuck_s:.0f} s while connected"
        return ""
