"""The updater's health gate: is the new version healthy? (pure verdicts, injected clock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.update.gate import session_live, uplink_connected_now, verdict, wait_healthy

GOOD = {"version": "0.2.0", "ready": True, "healthy": True, "uplink_connected": True}


@pytest.mark.parametrize(("doc", "waited_s", "result"), [
    (None, 0, "wait"),
    ({**GOOD, "version": "0.1.0"}, 0, "wait"),  # the old process's last report
    ({**GOOD, "ready": False}, 0, "wait"),
    (GOOD, 0, "ok"),
    ({**GOOD, "uplink_connected": False}, 5, "wait"),  # give the uplink its grace period
    ({**GOOD, "uplink_connected": False}, 30, "ok"),  # offline venue: capturing is enough
    ({**GOOD, "healthy": False, "state": "error"}, 0, "fail"),
    ({**GOOD, "healthy": "yes"}, 0, "fail"),  # only a real true counts
])
def test_verdict(doc: dict[str, object] | None, waited_s: float, result: str) -> None:
    assert verdict(doc, "0.2.0", waited_s, uplink_grace_s=30)[0] == result


@pytest.mark.parametrize(("doc", "waited_s", "result"), [
    (GOOD, 0, "ok"),
    ({**GOOD, "uplink_connected": False}, 30, "wait"),  # the grace no longer excuses it ...
    ({**GOOD, "uplink_connected": False}, 10_000, "wait"),  # ... ever: the deadline decides
    ({**GOOD, "healthy": False, "state": "error"}, 0, "fail"),
])
def test_verdict_where_the_old_version_was_online(doc: dict[str, object], waited_s: float,
                                                  result: str) -> None:
    assert verdict(doc, "0.2.0", waited_s, uplink_grace_s=30, need_uplink=True)[0] == result


def test_an_online_venue_needs_the_new_uplink_before_the_deadline(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    path.write_text(json.dumps({**GOOD, "uplink_connected": False}))
    clock = FakeClock()
    ok, why = wait_healthy(path, "0.2.0", deadline_s=60, uplink_grace_s=5, need_uplink=True,
                           poll_s=1, clock=clock, sleep=clock.sleep)
    assert not ok and "within 60 s" in why and "uplink" in why
    assert clock.t == pytest.approx(60.0)


@pytest.mark.parametrize(("doc", "age_s", "connected", "live"), [
    ({"uplink_connected": True, "session_live": False}, 1, True, False),
    ({"uplink_connected": False, "session_live": True}, 1, False, True),
    ({"uplink_connected": True, "session_live": True}, 60, False, False),  # stale: not running
    ({"uplink_connected": "yes"}, 1, False, False),  # only a real true counts
])
def test_what_the_running_gateway_says_counts_only_while_fresh(
        tmp_path: Path, doc: dict[str, object], age_s: float, connected: bool,
        live: bool) -> None:
    path = tmp_path / "health.json"
    path.write_text(json.dumps(doc))
    now = path.stat().st_mtime + age_s
    assert uplink_connected_now(path, now_s=lambda: now) is connected
    assert session_live(path, now_s=lambda: now) is live
    assert not uplink_connected_now(tmp_path / "missing.json") and not uplink_connected_now(None)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_no_report_within_the_deadline_fails(tmp_path: Path) -> None:
    clock = FakeClock()
    ok, why = wait_healthy(tmp_path / "missing.json", "0.2.0", deadline_s=10, uplink_grace_s=5,
                           poll_s=0.5, clock=clock, sleep=clock.sleep)
    assert not ok and "within 10 s" in why and "no health report" in why
    assert clock.t == pytest.approx(10.0)


def test_a_report_that_stays_offline_passes_after_the_grace(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    path.write_text(json.dumps({**GOOD, "uplink_connected": False}))
    clock = FakeClock()
    ok, why = wait_healthy(path, "0.2.0", deadline_s=60, uplink_grace_s=5, poll_s=1,
                           clock=clock, sleep=clock.sleep)
    assert ok and "offline" in why and clock.t == pytest.approx(5.0)
