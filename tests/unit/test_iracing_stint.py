"""The iRacing stint / pit machine, driven by scripted observations and an injected clock."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway.normalize.iracing_stint import (
    LAP_TIME_WAIT_S,
    ClosedLap,
    IRacingStint,
    IrEvent,
    Observation,
)

DT = 1 / 10  # one observation per 100 ms of session time


class Drive:
    """A car driven step by step; collects what the machine says."""

    def __init__(self, **first: Any) -> None:
        base: dict[str, Any] = {
            "session_time_s": 100.0, "time_of_day_s": 50_000.0, "lap_completed": 0,
            "last_lap_time_s": 0.0, "surface": 3, "on_pit_road": False, "in_stall": False,
            "speed_mps": 50.0, "fuel_level_l": 30.0, "driver": "Ann"}
        self.obs = Observation(**{**base, **first})
        self.machine = IRacingStint()
        self.out: list[IrEvent | ClosedLap] = []
        self.out += self.machine.update(self.obs, self.obs.session_time_s)

    def step(self, n: int = 1, dt: float = DT, **changes: Any) -> None:
        """`n` observations `dt` apart; `changes` (a time of day too) apply from the first."""
        for _ in range(n):
            t = round(self.obs.session_time_s + dt, 4)
            self.obs = dataclasses.replace(self.obs, **{
                "session_time_s": t, "time_of_day_s": self.obs.time_of_day_s + dt, **changes})
            changes = {}
            self.out += self.machine.update(self.obs, t)

    def cross_line(self, lap_time_s: float, *, lag_steps: int = 3, fuel_l: float | None = None
                   ) -> None:
        """LapCompleted +1 now; LapLastLapTime follows `lag_steps` later (as the sim does)."""
        changes: dict[str, Any] = {"lap_completed": self.obs.lap_completed + 1}
        if fuel_l is not None:
            changes["fuel_level_l"] = fuel_l
        self.step(**changes)
        self.step(lag_steps - 1)
        self.step(last_lap_time_s=lap_time_s)

    def events(self) -> list[str]:
        return [o.code for o in self.out if isinstance(o, IrEvent)]

    def event(self, code: str) -> IrEvent:
        (ev,) = [o for o in self.out if isinstance(o, IrEvent) and o.code == code]
        return ev

    def laps(self) -> list[ClosedLap]:
        return [o for o in self.out if isinstance(o, ClosedLap)]

    def pit_stop(self, *, fuel_to: float | None = None, flags: int = 0x1F) -> None:
        """Enter, stop in the stall, refuel (optionally), go, exit."""
        self.step(on_pit_road=True, surface=2, speed_mps=20.0, pit_sv_flags=flags)
        self.step(2, speed_mps=15.0)
        self.step(surface=1, in_stall=True, speed_mps=0.2)
        if fuel_to is not None:
            start = self.obs.fuel_level_l or 0.0
            for i in range(1, 6):
                self.step(fuel_level_l=round(start + (fuel_to - start) * i / 5, 2))
        self.step(5)
        self.step(speed_mps=3.0, pit_sv_flags=0)  # flags clear as the car leaves: snapshot kept
        self.step(surface=2, in_stall=False, speed_mps=15.0)
        self.step(3)
        self.step(on_pit_road=False, surface=3, speed_mps=40.0)


def test_a_lap_waits_for_its_new_lap_time_then_carries_stint_and_lap_in_stint():
    d = Drive()
    d.step(lap_completed=1)
    d.step(3)
    assert d.laps() == [], "the lap must wait for LapLastLapTime to change"
    d.step(last_lap_time_s=92.5)
    (lap,) = d.laps()
    assert (lap.lap_no, lap.lap_time_s, lap.stint, lap.lap_in_stint) == (1, 92.5, 1, 1)


def test_a_lap_whose_time_never_comes_closes_after_the_wait_without_a_time():
    d = Drive()
    d.step(lap_completed=1)
    d.step(int(LAP_TIME_WAIT_S / DT) - 2)
    assert d.laps() == []
    d.step(3)
    (lap,) = d.laps()
    assert lap.lap_no == 1 and lap.lap_time_s == 0.0


def test_the_out_lap_from_minus_one_to_zero_makes_no_lap():
    d = Drive(lap_completed=-1)
    d.step(lap_completed=0)
    d.step(20, last_lap_time_s=0.0)
    assert d.laps() == []


def test_a_stint_with_a_refuel_stop_numbers_stints_and_never_reports_negative_fuel():
    d = Drive()
    d.cross_line(90.0, fuel_l=27.0)
    d.cross_line(91.0, fuel_l=24.0)
    d.pit_stop(fuel_to=40.0)
    d.cross_line(120.0, fuel_l=39.0)  # the lap with the stop: in, refuel, out
    d.cross_line(90.5, fuel_l=36.0)
    assert d.events() == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]
    laps = d.laps()
    assert [(lap.lap_no, lap.stint, lap.lap_in_stint) for lap in laps] == [
        (1, 1, 1), (2, 1, 2), (3, 2, 1), (4, 2, 2)]
    assert [lap.fuel_used_l for lap in laps] == [3.0, 3.0, None, 3.0]
    refuel_lap = laps[2]
    assert refuel_lap.pit_in and refuel_lap.pit_out
    assert refuel_lap.detail["fuel_added_l"] == pytest.approx(16.0, abs=0.01)
    exit_ = d.event("pit_exit").detail
    assert exit_["fuel_added_l"] == pytest.approx(16.0, abs=0.01)
    assert exit_["pit_sv_flags"] == 0x1F, "service flags are the snapshot taken at entry"
    assert exit_["stationary_s"] > 0 and exit_["lane_time_s"] > exit_["stationary_s"]
    assert not exit_["drive_through"] and exit_["stint"] == 2
    stop, go = d.event("pit_stop"), d.event("pit_go")
    entry = d.event("pit_entry")
    assert entry.session_time_s < stop.session_time_s < go.session_time_s
    assert entry.detail["time_of_day_s"] < stop.detail["time_of_day_s"]
    assert refuel_lap.detail["pit_entry_s"] == entry.session_time_s
    assert refuel_lap.detail["pit_stop_s"] == stop.session_time_s


def test_pit_entry_stop_go_and_exit_are_stamped_in_session_time_and_time_of_day():
    d = Drive()  # SessionTimeOfDay has 1 s resolution: each edge gets its own whole second
    d.step(on_pit_road=True, surface=2, speed_mps=20.0, time_of_day_s=50_010.0)  # t 100.1
    d.step(2, speed_mps=15.0)
    d.step(surface=1, in_stall=True, speed_mps=0.2, time_of_day_s=50_020.0)  # t 100.4
    d.step(5)
    d.step(speed_mps=3.0, time_of_day_s=50_030.0)  # t 101.0
    d.step(surface=2, in_stall=False, speed_mps=15.0)
    d.step(3)
    d.step(on_pit_road=False, surface=3, speed_mps=40.0, time_of_day_s=50_040.0)  # t 101.5
    stamps = {code: (d.event(code).session_time_s, d.event(code).detail["time_of_day_s"])
              for code in ("pit_entry", "pit_stop", "pit_go", "pit_exit")}
    assert stamps == {"pit_entry": (100.1, 50_010.0), "pit_stop": (100.4, 50_020.0),
                      "pit_go": (101.0, 50_030.0), "pit_exit": (101.5, 50_040.0)}
    assert d.event("pit_exit").detail["entry_time_of_day_s"] == 50_010.0
    v = d.machine.last_visit
    assert (v.entry_s, v.stop_s, v.go_s, v.exit_s) == (100.1, 100.4, 101.0, 101.5)


def test_several_stops_in_one_visit_keep_the_first_stop_and_the_last_restart():
    d = Drive()
    d.step(on_pit_road=True, surface=2, speed_mps=20.0, time_of_day_s=50_010.0)  # t 100.1
    d.step(surface=1, in_stall=True, speed_mps=0.0, time_of_day_s=50_011.0)  # t 100.2: stop
    d.step(3)
    d.step(speed_mps=2.0, time_of_day_s=50_013.0)  # t 100.6: rolls (pushed back into the box)
    d.step(speed_mps=0.0, time_of_day_s=50_014.0)  # t 100.7: stands again, no second stop
    d.step(4)
    d.step(speed_mps=3.0, time_of_day_s=50_020.0)  # t 101.2: the restart that counts
    d.step(surface=2, in_stall=False, speed_mps=15.0)
    d.step(on_pit_road=False, surface=3, speed_mps=40.0, time_of_day_s=50_025.0)  # t 101.4
    assert d.events() == ["pit_entry", "pit_stop", "pit_go", "pit_go", "pit_exit"]
    gos = [o for o in d.out if isinstance(o, IrEvent) and o.code == "pit_go"]
    assert [(g.session_time_s, g.detail["time_of_day_s"]) for g in gos] == [
        (100.6, 50_013.0), (101.2, 50_020.0)]
    assert d.event("pit_stop").detail["time_of_day_s"] == 50_011.0
    v = d.machine.last_visit
    assert (v.stop_s, v.go_s, v.exit_s) == (100.2, 101.2, 101.4)
    detail = d.event("pit_exit").detail
    assert (detail["stationary_s"], detail["lane_time_s"]) == (1.0, 1.3)
    assert detail["time_of_day_s"] == 50_025.0 and not detail["drive_through"]


def test_repair_and_optional_repair_are_kept_from_their_first_non_zero_value():
    d = Drive()
    d.step(on_pit_road=True, surface=2, speed_mps=20.0)
    d.step(surface=1, in_stall=True, speed_mps=0.0, repair_left_s=35.0, opt_repair_left_s=80.0)
    d.step(repair_left_s=20.0, opt_repair_left_s=60.0)
    d.step(speed_mps=5.0, surface=2, in_stall=False, repair_left_s=0.0, opt_repair_left_s=0.0)
    d.step(on_pit_road=False, surface=3)
    detail = d.event("pit_exit").detail
    assert (detail["repair_s"], detail["opt_repair_s"]) == (35.0, 80.0)
    d.cross_line(100.0)
    assert d.laps()[0].detail["repair_s"] == 35.0


def test_a_drive_through_is_a_pit_visit_with_zero_stationary_time():
    d = Drive()
    d.step(on_pit_road=True, surface=2, speed_mps=20.0)
    d.step(20, speed_mps=22.0)
    d.step(on_pit_road=False, surface=3)
    assert d.events() == ["pit_entry", "pit_exit"]
    detail = d.event("pit_exit").detail
    assert detail["drive_through"] and detail["stationary_s"] == 0.0
    assert d.machine.stint == 2


def test_a_race_start_from_the_pit_box_is_no_stop_and_no_new_stint():
    d = Drive(on_pit_road=True, surface=1, in_stall=True, speed_mps=0.0, lap_completed=-1)
    d.step(10)
    d.step(speed_mps=5.0, surface=2, in_stall=False)
    d.step(5)
    d.step(on_pit_road=False, surface=3, speed_mps=30.0)
    assert d.events() == ["pit_exit"]
    assert d.event("pit_exit").detail["from_pit_box"] is True
    assert d.machine.stint == 1


def test_a_driver_swap_in_the_stall_is_not_a_pit_exit_and_the_stint_carries_on():
    d = Drive()
    d.cross_line(90.0)
    d.step(on_pit_road=True, surface=2, speed_mps=20.0)
    d.step(surface=1, in_stall=True, speed_mps=0.0)
    d.step(5, surface=-1, on_pit_road=False, in_stall=False)  # the car leaves the world
    d.step(driver="Bob")
    d.step(5, surface=1, on_pit_road=True, in_stall=True)  # back, Bob in the seat
    d.step(speed_mps=4.0, surface=2, in_stall=False)
    d.step(on_pit_road=False, surface=3, speed_mps=30.0)
    assert d.events() == ["pit_entry", "pit_stop", "driver_change", "pit_go", "pit_exit"]
    assert d.event("driver_change").detail == {"from": "Ann", "to": "Bob"}
    assert d.event("pit_exit").detail["driver_swap"] is True
    assert d.machine.stint == 2
    d.cross_line(95.0)
    assert d.laps()[-1].detail["driver"] == "Bob" and d.laps()[-1].stint == 2


def test_a_tow_starts_a_new_stint_and_the_exit_after_it_does_not_count_again():
    d = Drive()
    d.cross_line(90.0)
    d.step(tow_time_s=45.0, speed_mps=0.0)  # the countdown starts a tick before the car goes
    d.step(5, tow_time_s=40.0, surface=-1)
    assert d.events() == ["tow"] and d.machine.stint == 2 and d.machine.stint_laps == 0
    d.step(tow_time_s=0.0, surface=1, on_pit_road=True, in_stall=True)
    d.step(speed_mps=4.0, surface=2, in_stall=False)
    d.step(on_pit_road=False, surface=3, speed_mps=30.0)
    assert d.events() == ["tow", "pit_exit"] and d.machine.stint == 2
    d.cross_line(130.0)
    lap = d.laps()[-1]
    assert lap.stint == 2 and lap.lap_in_stint == 1 and lap.detail["tow_time_s"] == 45.0


def test_a_reset_takes_the_lap_count_back_and_makes_no_lap():
    d = Drive()
    d.cross_line(90.0)
    d.step(surface=-1, on_pit_road=False, speed_mps=0.0)
    d.step(surface=1, on_pit_road=True, in_stall=True, lap_completed=-1)
    d.step(20)
    assert [lap.lap_no for lap in d.laps()] == [1]
    assert "reset" in d.events() and "pit_entry" not in d.events()
    d.step(speed_mps=3.0, surface=2, in_stall=False)
    d.step(on_pit_road=False, surface=3)
    assert d.events()[-1] == "pit_exit" and d.machine.stint == 1


def test_a_box_joining_mid_race_starts_the_stint_at_the_laps_completed():
    d = Drive(lap_completed=12)
    d.cross_line(90.0)
    (lap,) = d.laps()
    assert (lap.lap_no, lap.stint, lap.lap_in_stint) == (13, 1, 13)


def test_a_teammates_view_stops_on_the_stall_surface_and_has_no_fuel():
    d = Drive(speed_mps=None, fuel_level_l=None)
    d.step(on_pit_road=True, surface=2)
    d.step(3, surface=1)
    d.step(surface=2)
    d.step(on_pit_road=False, surface=3)
    assert d.events() == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]
    d.cross_line(91.0)
    assert d.laps()[0].fuel_used_l is None and d.laps()[0].fuel_level_l is None


HZ60 = 1 / 60  # an .ibt's row rate


def test_a_slow_refuel_at_60_hz_adds_up_and_a_jittery_gauge_does_not():
    d = Drive(fuel_level_l=20.0)
    for i in range(120):  # a gauge jittering ±0.02 L around a falling level: no refuel
        d.step(dt=HZ60, fuel_level_l=round(20.0 - 0.01 * i + (0.02 if i % 2 else -0.02), 3))
    d.cross_line(90.0, fuel_l=18.0)
    d.step(on_pit_road=True, surface=2, speed_mps=20.0)
    d.step(surface=1, in_stall=True, speed_mps=0.0)
    for k in range(1, 31):  # 2.4 l/s at 60 rows/s: 0.04 l a row, each below any noise floor
        d.step(dt=HZ60, fuel_level_l=round(18.0 + 0.04 * k, 3))
    d.step(speed_mps=3.0)
    d.step(surface=2, in_stall=False, speed_mps=15.0)
    d.step(on_pit_road=False, surface=3, speed_mps=40.0)
    d.cross_line(120.0, fuel_l=17.0)  # 1.2 l in, 2.2 l burnt: the tank ends below its start
    d.cross_line(90.0, fuel_l=14.0)
    laps = d.laps()
    assert [lap.detail["fuel_added_l"] for lap in laps] == pytest.approx([0.0, 1.2, 0.0],
                                                                        abs=0.005)
    assert [lap.fuel_used_l for lap in laps] == [2.0, None, 3.0]
    assert d.event("pit_exit").detail["fuel_added_l"] == pytest.approx(1.2, abs=0.005)


def test_a_lap_still_waiting_for_its_time_is_closed_without_one_when_flushed():
    d = Drive()
    d.cross_line(90.0)
    d.step(lap_completed=2)  # the session (or the file) ends before the time comes
    (lap,) = d.machine.flush()
    assert (lap.lap_no, lap.lap_time_s, lap.stint, lap.lap_in_stint) == (2, 0.0, 1, 2)
    assert [lap.lap_no for lap in d.laps()] == [1] and d.machine.flush() == []


def teammate(**first: Any) -> Drive:
    """A teammate's view: no speed, no fuel, no tow countdown; surfaces and pit road only."""
    return Drive(speed_mps=None, fuel_level_l=None, **first)


def test_a_tow_seen_only_from_a_teammates_pc_starts_a_new_stint():
    d = teammate()
    d.cross_line(90.0)
    d.step(surface=0)  # off the track
    d.step(surface=-1)  # gone: towed (PlayerCarTowTime reads 0 on this PC)
    d.step(299)
    d.step(surface=1, on_pit_road=True, in_stall=True)  # back in the world, in its stall
    assert d.events() == ["tow"] and d.machine.stint == 2 and d.machine.stint_laps == 0
    assert d.event("tow").detail["tow_time_s"] == 30.0
    d.step(surface=2, in_stall=False)
    d.step(on_pit_road=False, surface=3)
    assert d.events() == ["tow", "pit_exit"] and d.machine.stint == 2
    d.cross_line(150.0)
    lap = d.laps()[-1]
    assert (lap.stint, lap.lap_in_stint, lap.detail["tow_time_s"]) == (2, 1, 30.0)


def test_a_driver_swap_seen_from_a_teammates_pc_is_no_tow():
    d = teammate()
    d.cross_line(90.0)
    d.step(on_pit_road=True, surface=2)
    d.step(surface=1, in_stall=True)
    d.step(50, surface=-1, on_pit_road=False, in_stall=False)  # left the world from the stall
    d.step(driver="Bob", surface=1, on_pit_road=True, in_stall=True)
    d.step(surface=2, in_stall=False)
    d.step(on_pit_road=False, surface=3)
    assert "tow" not in d.events() and d.event("pit_exit").detail["driver_swap"] is True
    assert d.machine.stint == 2


def test_a_reset_seen_from_a_teammates_pc_is_no_tow():
    d = teammate()
    d.cross_line(90.0)
    d.step(surface=-1)
    d.step(surface=1, on_pit_road=True, in_stall=True, lap_completed=-1)
    assert "tow" not in d.events() and "reset" in d.events() and d.machine.stint == 1
