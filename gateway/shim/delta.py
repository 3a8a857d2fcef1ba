"""What the shim sends: only what changed, edges at once, continuous values at `send_hz`. Pure.

A lap counter, a pit-road flag or a service flag changing is an edge and goes out in the
poll that saw it. Values that drift every tick (clocks, speed, fuel, countdown timers) go out
at most `send_hz` times a second, and with every edge; a countdown turning non-zero (a tow,
a repair) or back to zero is an edge too.
"""

from __future__ import annotations

from typing import Any

CONTINUOUS = frozenset({"SessionTime", "SessionTimeOfDay", "Speed", "FuelLevel",
                        "FuelUsePerHour", "TrackTemp", "PlayerCarTowTime", "PitRepairLeft",
                        "PitOptRepairLeft"})
COUNTDOWNS = frozenset({"PlayerCarTowTime", "PitRepairLeft", "PitOptRepairLeft"})
_MISSING = object()


def _crosses_zero(old: Any, new: Any) -> bool:
    return (not old) != (not new)


class DeltaTracker:
    """The values last handed to the link, and the time of the last send (`now_s`: any clock)."""

    def __init__(self, send_hz: float) -> None:
        self.period_s = 1.0 / send_hz if send_hz > 0 else 0.0
        self.sent: dict[str, Any] = {}
        self._last_s = float("-inf")

    def changes(self, values: dict[str, Any], now_s: float) -> dict[str, Any] | None:
        """The variables to send now, or None."""
        diff = {k: v for k, v in values.items() if self.sent.get(k, _MISSING) != v}
        if not diff:
            return None
        edge = any(k not in CONTINUOUS or (k in COUNTDOWNS and _crosses_zero(self.sent.get(k), v))
                   for k, v in diff.items())
        if not edge and now_s - self._last_s < self.period_s:
            return None
        self.sent.update(diff)
        self._last_s = now_s
        return diff
