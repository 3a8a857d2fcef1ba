"""The health model: counters and a monotonic time in, one verdict out (no clock, no I/O)."""

from __future__ import annotations

import pytest

from gateway.status.health import HealthModel, Sample, State


def sample(t: float, **kw: object) -> Sample:
    base: dict[str, object] = {"mono_s": t, "ready": True, "datagrams": 0,
                               "uplink_connected": True, "outbox_pending": 0,
                               "clock_sane": True, "commit_failed": False}
    base.update(kw)
    return Sample(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "state"), [
    ({"ready": False}, State.BOOTING),
    ({"ready": False, "commit_failed": True}, State.BOOTING),
    ({"commit_failed": True}, State.ERROR),
    ({"commit_failed": True, "uplink_connected": False}, State.ERROR),
    ({}, State.ONLINE),
    ({"clock_sane": False}, State.ONLINE),  # connected means the token was good enough
    ({"uplink_connected": False, "clock_sane": False}, State.CLOCK_UNSYNCED),
    ({"uplink_connected": False}, State.OFFLINE),
])
def test_the_most_urgent_state_wins(changes: dict[str, object], state: State) -> None:
    assert HealthModel(outbox_budget_rows=100).update(sample(0.0, **changes)).state is state


def test_capturing_follows_the_datagram_counter_and_a_live_session_outlasts_a_pause() -> None:
    model = HealthModel(outbox_budget_rows=100, capturing_window_s=5, session_window_s=60)
    seen = [(h.capturing, h.session_live) for h in (
        model.update(sample(0.0, datagrams=0)),    # nothing yet
        model.update(sample(1.0, datagrams=40)),   # data
        model.update(sample(5.9, datagrams=40)),   # quiet 4.9 s: still capturing
        model.update(sample(6.1, datagrams=40)),   # quiet 5.1 s: waiting for game data
        model.update(sample(60.9, datagrams=40)),  # a pit-wall pause: the session is still live
        model.update(sample(61.1, datagrams=40)),  # over: updates may go ahead
        model.update(sample(70.0, datagrams=3)),   # the service restarted its counter: data again
    )]
    assert seen == [(False, False), (True, True), (True, True), (False, True), (False, True),
                    (False, False), (True, True)]


def test_a_booting_box_is_never_capturing() -> None:
    model = HealthModel(outbox_budget_rows=100)
    assert not model.update(sample(0.0, ready=False, datagrams=5)).capturing


@pytest.mark.parametrize(("pending", "connected", "buffering", "fill"), [
    (0, False, False, 0.0),
    (25, False, True, 0.25),
    (250, False, True, 1.0),  # over budget: clipped
    (25, True, False, 0.25),  # connected: draining, not buffering
])
def test_buffering_and_fill(pending: int, connected: bool, buffering: bool, fill: float) -> None:
    h = HealthModel(outbox_budget_rows=100).update(
        sample(0.0, outbox_pending=pending, uplink_connected=connected))
    assert (h.buffering, h.fill) == (buffering, fill)


def test_healthy_means_ready_and_committing() -> None:
    model = HealthModel(outbox_budget_rows=100)
    assert model.update(sample(0.0)).healthy
    assert model.update(sample(0.0, uplink_connected=False, clock_sane=False)).healthy
    assert not model.update(sample(0.0, ready=False)).healthy
    assert not model.update(sample(0.0, commit_failed=True)).healthy
    doc = model.update(sample(0.0, outbox_pending=7)).to_dict()
    assert doc["state"] == "online" and doc["healthy"] is True and doc["outbox_pending"] == 7


def test_a_zero_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        HealthModel(outbox_budget_rows=0)


def test_the_outbox_byte_budget_wins_over_the_row_estimate() -> None:
    h = HealthModel(outbox_budget_rows=100).update(
        sample(0.0, outbox_pending=90, uplink_connected=False, outbox_fill=0.3))
    assert h.fill == 0.3 and h.buffering
