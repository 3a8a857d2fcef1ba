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
  them at once.
- **uplink**: disconnected is idle (the publisher reconnects by itself). Connected, the pump
  must show within `uplink_stall_s` that it turns: it cleared the wakeup the service set, or a
  send finished. A pump stuck on sends the broker never acknowledges looks the same as one of
  our bugs; the long default (2 min) keeps such restarts under the unit's start limit.

Once a reason appears the pings stop until it clears; systemd kills the gateway after
WatchdogSec without one.
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
    commit: Commit  # how the latest outbox commit went
    uplink_connected: bool
    uplink_turned: bool  # the pump showed it turns since the previous reading


class Watchdog:
    """Remembers since when commits fail and when the connected pump last turned."""

    def __init__(self, *, commit_grace_s: float = COMMIT_GRACE_S,
                 uplink_stall_s: float = UPLINK_STALL_S) -> None:
        self.commit_grace_s = commit_grace_s
        self.uplink_stall_s = uplink_stall_s
        self._failing_since: float | None = None
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
        if p.commit != "io_error":
            self._failing_since = None
            return "a bug in the outbox commit" if p.commit == "bug" else ""
        if self._failing_since is None:
            self._failing_since = p.mono_s
        failing_s = p.mono_s - self._failing_since
        if failing_s > self.commit_grace_s:
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
