"""`pitbox outbox stats` in words (pure): rows, bytes, oldest age and evictions per kind."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.outbox.eviction import eviction_rank
from gateway.outbox.stats import KindStats


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def describe(path: str, stats: Mapping[str, KindStats], budget_bytes: int | None,
             now_ns: int) -> list[str]:
    """One header line, then one line per kind (most precious last, like eviction goes)."""
    used = sum(s.bytes for s in stats.values())
    cap = f"budget {_mb(budget_bytes)}" if budget_bytes else "no budget"
    if not any(s.rows or s.evicted for s in stats.values()):
        return [f"outbox {path}: empty ({cap})"]
    lines = [f"outbox {path}: {sum(s.rows for s in stats.values())} rows, {_mb(used)} of {cap}"]
    for kind in sorted(stats, key=eviction_rank):
        s = stats[kind]
        if s.oldest_ns:
            when = datetime.fromtimestamp(s.oldest_ns / 1e9, UTC).isoformat(timespec="seconds")
            age = f"oldest {(now_ns - s.oldest_ns) / 1e9:.0f} s ago ({when})"
        else:
            age = "none buffered"
        lines.append(f"  {kind:8} {s.rows:8} rows {_mb(s.bytes):>9}, {age}; "
                     f"evicted {s.evicted} ever")
    return lines
