"""Reconnect backoff and the publish rate limit, pure: seeded randomness, injected clock."""

import random

import pytest

from gateway.uplink.backoff import Backoff
from gateway.uplink.ratelimit import TokenBucket


def test_the_ceiling_doubles_from_the_minimum_and_stops_at_the_cap():
    b = Backoff(min_s=1, max_s=32)
    assert [b.ceiling(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 32, 32]
    assert b.ceiling(10_000) == 32  # no overflow after days offline


def test_every_delay_lies_between_the_minimum_and_its_ceiling_plus_the_jitter():
    b = Backoff(min_s=0.5, max_s=20)
    rng = random.Random(7)
    for attempt in range(40):
        d = b.delay(attempt, rng)
        assert 0.5 <= d <= min(20, b.ceiling(attempt) + 1.0) == b.longest(attempt)


def test_the_first_retry_after_a_lost_connection_is_jittered_too():
    # After a broker restart every box is at attempt 0 at the same moment: a fixed first
    # wait would bring the whole venue back in one instant.
    b = Backoff()  # the publisher's default: 1 s, doubling to 32 s, 0-1 s of jitter
    delays = [b.delay(0, random.Random(seed)) for seed in range(500)]
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) == len(delays)  # no two boxes share an instant
    assert max(delays) - min(delays) > 0.95  # spread over the whole second
    early = sum(d < 1.5 for d in delays)
    assert 200 < early < 300  # uniform, not bunched at either end


def test_a_fleet_does_not_reconnect_in_lockstep():
    b = Backoff(min_s=1, max_s=32)
    delays = [b.delay(6, random.Random(seed)) for seed in range(50)]
    assert len({round(d, 3) for d in delays}) > 45  # spread, not one instant
    assert max(delays) - min(delays) > 15


def test_same_seed_same_delays():
    b = Backoff()
    assert [b.delay(n, random.Random(3)) for n in range(5)] == \
           [b.delay(n, random.Random(3)) for n in range(5)]


@pytest.mark.parametrize("kwargs", [{"min_s": 0}, {"min_s": 5, "max_s": 1}, {"factor": 0.5},
                                    {"jitter_s": -1}])
def test_nonsense_backoff_is_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_the_bucket_allows_a_burst_then_the_rate():
    tb = TokenBucket(rate_per_s=100, burst=10, reserve=0, now_s=0.0)
    taken = sum(tb.take(0.0, urgent=False) for _ in range(20))
    assert taken == 10
    assert tb.wait_s(0.0, urgent=False) == pytest.approx(0.01)
    assert tb.take(0.01, urgent=False) and not tb.take(0.01, urgent=False)
    # over one simulated second at most rate + burst messages go
    sent = sum(tb.take(t / 1000, urgent=False) for t in range(20, 1020))
    assert 99 <= sent <= 101


def test_the_reserve_is_kept_for_laps_and_events():
    tb = TokenBucket(rate_per_s=100, burst=10, reserve=3, now_s=0.0)
    low = sum(tb.take(0.0, urgent=False) for _ in range(20))
    assert low == 7  # samples stop with 3 tokens left
    assert tb.wait_s(0.0, urgent=True) == 0
    assert sum(tb.take(0.0, urgent=True) for _ in range(5)) == 3
