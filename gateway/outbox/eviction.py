"""What goes when the outbox is over its size budget (pure: numbers in, a plan out).

A team must never lose a lap or a pit event, so the budget is paid by the least valuable
records first: the oldest samples, then superseded stint states, then laps, then events,
session records last. A kind is touched only when every kind before it is gone entirely.
The shell (`store.Outbox`) measures, asks `plan`, deletes the oldest rows of each kind, and
reports through `EvictionLog`, which says it at most once a minute so a long outage at a
full budget does not flood the journal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

# Cheapest loss first. Kinds not listed (a future record kind) go just before laps.
EVICTION_ORDER: tuple[str, ...] = ("sample", "state", "lap", "event", "session")
LOG_EVERY_S = 60.0


class KindUsage(NamedTuple):
    rows: int
    bytes: int  # what these rows cost against the budget (body + per-row overhead)


def eviction_rank(kind: str) -> int:
    """Position of `kind` in the eviction order; unknown kinds go right before laps."""
    if kind in EVICTION_ORDER:
        return EVICTION_ORDER.index(kind) * 2
    return EVICTION_ORDER.index("lap") * 2 - 1


def plan(usage: Mapping[str, KindUsage], budget_bytes: int) -> list[tuple[str, int]]:
    """(kind, rows to evict from its oldest end) so that the total fits `budget_bytes`.

    Rows of a kind are assumed to cost their kind's average; the shell re-measures after
    deleting and asks again if that was optimistic. Returns [] when within budget.
    """
    used = sum(u.bytes for u in usage.values())
    over: float = used - budget_bytes
    out: list[tuple[str, int]] = []
    for kind in sorted(usage, key=eviction_rank):
        if over <= 0:
            break
        u = usage[kind]
        if u.rows <= 0:
            continue
        per_row = max(1.0, u.bytes / u.rows)
        n = min(u.rows, max(1, math.ceil(over / per_row)))
        out.append((kind, n))
        over -= n * per_row
    return out


class EvictionLog:
    """Counts evictions by kind; `note` returns a log line at most once per `every_s`.

    The clock is passed in (seconds, monotonic) so tests drive it.
    """

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        self.every_s = every_s
        self.total: Counter[str] = Counter()
        self._unreported: Counter[str] = Counter()
        self._last_s: float | None = None

    def note(self, kind: str, rows: int, now_s: float) -> str | None:
        self.total[kind] += rows
        self._unreported[kind] += rows
        return self.due(now_s)

    def due(self, now_s: float) -> str | None:
        """The line to log now, or None (nothing new, or said less than `every_s` ago)."""
        if not self._unreported:
            return None
        if self._last_s is not None and now_s - self._last_s < self.every_s:
            return None
        self._last_s = now_s
        what = ", ".join(f"{n} {kind}" for kind, n in sorted(self._unreported.items(),
                                                             key=lambda kv: eviction_rank(kv[0])))
        self._unreported.clear()
        totals = ", ".join(f"{kind} {n}" for kind, n in sorted(self.total.items()))
        return f"outbox over budget: evicted the oldest {what} (since start: {totals})"
