"""When to try the broker again (pure): truncated exponential backoff with jitter on every try.

paho's own backoff doubles without jitter, so every box at a venue whose internet comes back
reconnects in the same instant. The Cloud IoT Core guidance is `min(2^n s + random 0-1 s,
cap)`, never giving up. We draw the whole wait at random between `min_s` and the capped
exponential plus `jitter_s` ("full jitter", capped at `max_s`), which spreads a fleet best.
The jitter matters most on the first try: after a broker restart every box lost its
connection at the same moment and starts again at attempt 0, so attempt 0 is spread over
`[min_s, min_s + jitter_s]`, never a fixed `min_s`. The random source is passed in, so tests
are exact.
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
    jitter_s: float = 1.0  # added to the exponential's ceiling: attempt 0 waits min_s + 0..1 s

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s or self.factor < 1 or self.jitter_s < 0:
            raise ValueError("backoff needs 0 < min_s <= max_s, factor >= 1 and jitter_s >= 0,"
                             f" got {self}")

    def ceiling(self, attempt: int) -> float:
        """The capped exponential, before jitter."""
        if attempt >= 64:  # 2**64 s is past any cap; avoid float overflow
            return self.max_s
        return min(self.max_s, self.min_s * self.factor ** max(0, attempt))

    def longest(self, attempt: int) -> float:
        """The longest this attempt may wait: the ceiling plus the jitter, at most `max_s`."""
        return min(self.max_s, self.ceiling(attempt) + self.jitter_s)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait: uniform in [min_s, longest(attempt)]."""
        return self.min_s + rng.random() * (self.longest(attempt) - self.min_s)
