"""Messages per second to the broker (pure): a token bucket with a reserve for what matters.

Cloud IoT Core allows 100 messages/s per device connection. The bucket refills at `rate_per_s`
up to `burst` tokens. Low-priority messages (samples, the backlog) may only take a token while
more than `reserve` are left, so a lap or a pit event never queues behind a stream of samples:
it finds a token at once. The clock is passed in (monotonic seconds).
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate_per_s: float = 100.0, burst: int = 20, reserve: int = 4,
                 now_s: float = 0.0) -> None:
        if rate_per_s <= 0 or burst < 1 or not 0 <= reserve < burst:
            raise ValueError("need rate_per_s > 0, burst >= 1 and 0 <= reserve < burst")
        self.rate_per_s, self.burst, self.reserve = rate_per_s, burst, reserve
        self._tokens = float(burst)
        self._at = now_s

    def _refill(self, now_s: float) -> None:
        if now_s > self._at:
            self._tokens = min(self.burst, self._tokens + (now_s - self._at) * self.rate_per_s)
            self._at = now_s

    def wait_s(self, now_s: float, *, urgent: bool) -> float:
        """Seconds until a token may be taken (0: now). Urgent messages may use the reserve."""
        self._refill(now_s)
        floor = 1.0 if urgent else 1.0 + self.reserve
        if self._tokens >= floor:
            return 0.0
        return (floor - self._tokens) / self.rate_per_s

    def take(self, now_s: float, *, urgent: bool) -> bool:
        """Take a token if allowed now."""
        if self.wait_s(now_s, urgent=urgent) > 0:
            return False
        self._tokens -= 1.0
        return True
