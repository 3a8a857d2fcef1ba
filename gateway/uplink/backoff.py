"""When to try the broker again (pure): truncated exponential backoff with full jitter.

paho's own backoff doubles without jitter, so every box at a venue whose internet comes back
reconnects in the same instant. The Cloud IoT Core guidance is `min(2^n s + random 0-1 s,
cap)`, never giving up. We draw the whole wait at random between `min_s` and the capped
exponential ("full jitter"), which spreads a fleet best, and never wait less than `min_s`.
The random source is passed in, so tests are exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """`delay(attempt, rng)` for the `attempt`-th failed try in a row (0 = the first)."""

    min_s: float = 1.0
    max_s: float = 32.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s or self.factor < 1:
            raise ValueError(f"backoff needs 0 < min_s <= max_s and factor >= 1, got {self}")

    def ceiling(self, attempt: int) -> float:
        """The capped exponential: the longest this attempt may wait."""
        if attempt >= 64:  # 2**64 s is past any cap; avoid float overflow
            return self.max_s
        return min(self.max_s, self.min_s * self.factor ** max(0, attempt))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait: uniform in [min_s, ceiling(attempt)]."""
        return self.min_s + rng.random() * (self.ceiling(attempt) - self.min_s)
