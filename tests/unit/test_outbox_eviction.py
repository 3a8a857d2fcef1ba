"""The eviction policy and its log throttle, pure: usage in, plan out; the clock is injected."""

import pytest

from gateway.outbox.eviction import EVICTION_ORDER, EvictionLog, KindUsage, eviction_rank, plan


def test_within_budget_nothing_goes():
    assert plan({"sample": KindUsage(10, 1000), "lap": KindUsage(2, 400)}, 1400) == []


def test_samples_pay_first_and_only_as_many_as_needed():
    usage = {"sample": KindUsage(100, 10_000), "lap": KindUsage(5, 2_000), "event": KindUsage(3, 300)}
    assert plan(usage, 12_300 - 250) == [("sample", 3)]  # 250 bytes over, 100 bytes per sample


def test_laps_and_events_go_only_when_every_sample_and_state_is_gone():
    usage = {"sample": KindUsage(10, 1_000), "state": KindUsage(2, 200),
             "lap": KindUsage(10, 4_000), "event": KindUsage(4, 400)}
    steps = plan(usage, 5_600 - 2_000)  # 2,000 over: all samples, all states, then 2 laps
    assert steps == [("sample", 10), ("state", 2), ("lap", 2)]


def test_events_outlive_laps_and_sessions_outlive_events():
    usage = {"lap": KindUsage(2, 200), "event": KindUsage(2, 200), "session": KindUsage(1, 100)}
    assert plan(usage, 150) == [("lap", 2), ("event", 2)]
    assert plan(usage, 0) == [("lap", 2), ("event", 2), ("session", 1)]


@pytest.mark.parametrize("kind", ["telemetry2", "weird"])
def test_an_unknown_kind_goes_after_samples_and_states_but_before_laps(kind):
    assert eviction_rank("state") < eviction_rank(kind) < eviction_rank("lap")
    usage = {"lap": KindUsage(1, 100), kind: KindUsage(1, 100), "sample": KindUsage(1, 100)}
    assert [k for k, _ in plan(usage, 0)] == ["sample", kind, "lap"]


def test_the_order_is_samples_states_laps_events_sessions():
    assert EVICTION_ORDER == ("sample", "state", "lap", "event", "session")


def test_eviction_is_logged_at_most_once_a_minute_with_what_went_since():
    log = EvictionLog(every_s=60)
    first = log.note("sample", 5, now_s=100.0)
    assert first is not None and "5 sample" in first
    assert log.note("sample", 7, now_s=130.0) is None
    assert log.note("lap", 1, now_s=159.9) is None
    line = log.note("sample", 1, now_s=160.0)
    assert line is not None and "8 sample, 1 lap" in line and "sample 13" in line
    assert log.due(500.0) is None  # nothing new: nothing to say
    assert dict(log.total) == {"sample": 13, "lap": 1}
