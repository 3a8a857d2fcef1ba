"""When the gateway may feed systemd's watchdog: the pure judge, driven by an injected clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.status.sdnotify import ping_interval_s
from gateway.status.watchdog import Progress, Watchdog

IDLE = Progress(mono_s=0.0, capture_open=True, dead_tasks=(), commit="ok",
                uplink_connected=False, uplink_turned=False)


def run(wd: Watchdog, readings: list[Progress]) -> list[str]:
    return [wd.check(p) for p in readings]


def at(t: float, **changes: object) -> Progress:
    return replace(IDLE, mono_s=t, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("reading", "why"), [
    (IDLE, ""),  # no rig, no broker: legitimately idle
    (at(0, uplink_connected=True, uplink_turned=True), ""),
    (at(0, commit="disk_full"), ""),  # a state (alarm LED), not a reason to restart
    (at(0, capture_open=False), "a capture socket is closed"),
    (at(0, dead_tasks=("uplink",)), "task uplink ended"),
    (at(0, dead_tasks=("uplink", "status")), "task uplink, status ended"),
    (at(0, commit="bug"), "a bug in the outbox commit"),
    (at(0, capture_open=False, commit="bug"), "a capture socket is closed"),  # most basic first
])
def test_one_reading(reading: Progress, why: str) -> None:
    assert Watchdog().check(reading) == why


def test_failing_commits_get_a_grace_period_then_starve_it_and_recover() -> None:
    wd = Watchdog(commit_grace_s=60)
    whys = run(wd, [at(0, commit="io_error"), at(59, commit="io_error"),
                    at(61, commit="io_error"), at(62), at(63, commit="io_error"),
                    at(100, commit="io_error")])
    assert whys == ["", "", "outbox commits failing for 61 s", "", "", ""]  # 63: a new episode


def test_a_full_disk_spends_no_grace_an_io_error_after_it_gets_the_whole_grace() -> None:
    wd = Watchdog(commit_grace_s=60)
    whys = run(wd, [at(0), at(1, commit="disk_full"), at(500, commit="disk_full"),
                    at(501, commit="io_error"), at(560, commit="io_error"),  # 559 s failing
                    at(562, commit="io_error"), at(563)])
    assert whys == ["", "", "", "", "",  # the I/O error's grace starts at 501, not at 1
                    "outbox commits failing for 61 s", ""]


def test_a_full_disk_never_starves_it() -> None:
    wd = Watchdog(commit_grace_s=60)
    assert run(wd, [at(t, commit="disk_full") for t in (0, 100, 10_000)]) == ["", "", ""]


def test_a_connected_pump_that_stops_turning_starves_it_until_it_turns_again() -> None:
    wd = Watchdog(uplink_stall_s=120)
    up = {"uplink_connected": True}
    whys = run(wd, [at(0, **up, uplink_turned=True), at(100, **up), at(120, **up),
                    at(121, **up), at(130, **up, uplink_turned=True), at(200, **up)])
    assert whys == ["", "", "", "the uplink pump has not turned for 121 s while connected",
                    "", ""]


def test_a_disconnected_pump_is_idle_and_a_new_connection_gets_the_full_window() -> None:
    wd = Watchdog(uplink_stall_s=120)
    whys = run(wd, [at(0, uplink_connected=True, uplink_turned=True), at(100),
                    at(1_000), at(1_001, uplink_connected=True),
                    at(1_120, uplink_connected=True), at(1_122, uplink_connected=True)])
    assert whys == ["", "", "", "", "",
                    "the uplink pump has not turned for 121 s while connected"]


@pytest.mark.parametrize(("usec", "interval_s"), [
    (None, 1.0), ("30000000", 1.0), ("1000000", 0.5), ("200000", 0.1), ("junk", 1.0), ("0", 1.0),
])
def test_pings_come_at_half_of_watchdog_usec_and_at_least_every_second(
        monkeypatch: pytest.MonkeyPatch, usec: str | None, interval_s: float) -> None:
    if usec is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    assert ping_interval_s() == pytest.approx(interval_s)
