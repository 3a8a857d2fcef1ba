"""The updater's health gate: is the new version healthy? (pure verdicts, injected clock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.update.gate import verdict, wait_healthy

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
