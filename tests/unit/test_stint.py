"""The stint / pit state machine: pit events in order, stint numbers, laps in the stint.

Pure: the machine is driven with session times, pit statuses and lap counts, no clock.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.normalize.stint import (
    PIT_AREA,
    PIT_NONE,
    PIT_PITTING,
    PitEvent,
    StintMachine,
    StintSnapshot,
)

Step = tuple[int, int, int | None]  # (laps_done, pit_status, speed_kph)


def drive(machine: StintMachine, steps: list[Step], *, t0: float = 0.0,
          dt: float = 0.5) -> list[PitEvent]:
    """Feed the steps at t0, t0 + dt, …; all the events, in order."""
    events: list[PitEvent] = []
    for i, (laps_done, pit_status, speed_kph) in enumerate(steps):
        events += machine.update(session_time_s=t0 + i * dt, laps_done=laps_done,
                                 pit_status=pit_status, speed_kph=speed_kph)
    return events


def codes(events: list[PitEvent]) -> list[str]:
    return [e.code for e in events]


def test_a_fresh_machine_is_in_stint_one_with_no_laps_and_no_pit_times() -> None:
    machine = StintMachine()
    assert machine.snapshot() == StintSnapshot(1, 0, False, None, None, None, None)
    assert machine.update(session_time_s=0.0, laps_done=0, pit_status=PIT_NONE,
                          speed_kph=0) == []


def test_laps_count_from_the_first_observation_when_joining_mid_session() -> None:
    machine = StintMachine()
    drive(machine, [(5, PIT_NONE, 250), (5, PIT_NONE, 250), (6, PIT_NONE, 250),
                    (7, PIT_NONE, 250)])
    assert (machine.stint, machine.stint_laps) == (1, 2)


def test_a_full_stop_yields_entry_stop_go_exit_in_order_and_starts_stint_two() -> None:
    machine = StintMachine()
    drive(machine, [(0, PIT_NONE, 250), (1, PIT_NONE, 250), (2, PIT_NONE, 250)])
    assert machine.stint_laps == 2
    events = drive(machine, [
        (2, PIT_PITTING, 80),  # t=10.0 entry
        (3, PIT_PITTING, 80),  # the line is in the pit lane: an in-lap closes in stint 1
        (3, PIT_AREA, 40),  # in the box area, still rolling: no stop yet
        (3, PIT_AREA, 0),  # t=11.5 stop
        (3, PIT_AREA, 0),
        (3, PIT_AREA, 30),  # t=12.5 go
        (3, PIT_PITTING, 80),
        (3, PIT_NONE, 120),  # t=13.5 exit
    ], t0=10.0)
    assert codes(events) == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]
    assert [e.session_time_s for e in events] == [10.0, 11.5, 12.5, 13.5]
    assert events[-1].detail == {"pit_lane_time_ms": 3500}  # no lane timer: from the times
    assert machine.snapshot() == StintSnapshot(2, 0, False, 10.0, 13.5, 11.5, 12.5)
    drive(machine, [(3, PIT_NONE, 250), (4, PIT_NONE, 250)], t0=20.0)
    assert (machine.stint, machine.stint_laps) == (2, 1)


def test_the_game_pit_lane_timer_wins_over_session_times() -> None:
    machine = StintMachine()
    machine.update(session_time_s=0.0, laps_done=0, pit_status=PIT_NONE, speed_kph=200)
    machine.update(session_time_s=1.0, laps_done=0, pit_status=PIT_PITTING, speed_kph=80,
                   pit_lane_time_ms=100)
    machine.update(session_time_s=2.0, laps_done=0, pit_status=PIT_PITTING, speed_kph=80,
                   pit_lane_time_ms=21_000)
    events = machine.update(session_time_s=3.0, laps_done=0, pit_status=PIT_NONE,
                            speed_kph=90, pit_lane_time_ms=0)  # the game zeroes it on exit
    assert events == [PitEvent("pit_exit", 3.0, {"pit_lane_time_ms": 21_000})]


def test_a_drive_through_exits_without_a_stop_and_still_starts_a_stint() -> None:
    machine = StintMachine()
    events = drive(machine, [(1, PIT_NONE, 250), (1, PIT_PITTING, 80), (1, PIT_PITTING, 80),
                             (1, PIT_NONE, 200)])
    assert codes(events) == ["pit_entry", "pit_exit"]
    snap = machine.snapshot()
    assert snap.stint == 2 and snap.pit_stop_s is None and snap.pit_go_s is None


def test_leaving_the_pit_area_counts_as_go_even_without_a_speed() -> None:
    machine = StintMachine()
    events = drive(machine, [(1, PIT_NONE, 250), (1, PIT_PITTING, 80), (1, PIT_AREA, 0),
                             (1, PIT_PITTING, None), (1, PIT_NONE, None)])
    assert codes(events) == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]


def test_jumping_from_the_box_straight_to_the_track_yields_go_before_exit() -> None:
    machine = StintMachine()
    events = drive(machine, [(1, PIT_NONE, 250), (1, PIT_AREA, 0), (1, PIT_NONE, 0)])
    assert codes(events) == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]
    assert events[2].session_time_s == events[3].session_time_s


def test_with_unknown_speed_a_rising_stop_timer_marks_the_stop() -> None:
    machine = StintMachine()
    seen: list[PitEvent] = []
    for i, (status, timer) in enumerate([(PIT_NONE, 0), (PIT_PITTING, 0), (PIT_AREA, 0),
                                         (PIT_AREA, 0), (PIT_AREA, 400), (PIT_AREA, 900),
                                         (PIT_PITTING, 0), (PIT_NONE, 0)]):
        seen += machine.update(session_time_s=float(i), laps_done=4, pit_status=status,
                               speed_kph=None, pit_stop_timer_ms=timer)
    assert [(e.code, e.session_time_s) for e in seen] == [
        ("pit_entry", 1.0), ("pit_stop", 4.0), ("pit_go", 6.0), ("pit_exit", 7.0)]


def test_a_stop_is_reported_once_per_visit() -> None:
    machine = StintMachine()
    events = drive(machine, [(1, PIT_NONE, 250), (1, PIT_PITTING, 80), (1, PIT_AREA, 0),
                             (1, PIT_AREA, 10), (1, PIT_AREA, 0), (1, PIT_AREA, 15),
                             (1, PIT_NONE, 90)])
    assert codes(events) == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]


def test_a_second_visit_clears_the_last_visit_times() -> None:
    machine = StintMachine()
    drive(machine, [(1, PIT_NONE, 250), (1, PIT_PITTING, 80), (1, PIT_AREA, 0),
                    (1, PIT_AREA, 20), (1, PIT_NONE, 90)])
    events = drive(machine, [(2, PIT_NONE, 250), (2, PIT_PITTING, 80)], t0=50.0)
    assert codes(events) == ["pit_entry"]
    assert machine.snapshot() == StintSnapshot(2, 1, True, 50.5, None, None, None)
    drive(machine, [(2, PIT_NONE, 120)], t0=60.0)
    assert machine.stint == 3


@pytest.mark.parametrize("first_status", [PIT_PITTING, PIT_AREA])
def test_a_car_first_seen_in_the_pit_lane_is_starting_and_makes_no_events(
        first_status: int) -> None:
    machine = StintMachine()
    events = drive(machine, [(0, first_status, 0), (0, PIT_AREA, 0), (0, PIT_AREA, 30),
                             (0, PIT_PITTING, 80), (0, PIT_NONE, 150), (1, PIT_NONE, 250)])
    assert events == []
    assert machine.snapshot() == StintSnapshot(1, 1, False, None, None, None, None)
    later = drive(machine, [(1, PIT_PITTING, 80), (1, PIT_AREA, 0), (1, PIT_NONE, 90)],
                  t0=100.0)  # the next visit is a real one
    assert codes(later) == ["pit_entry", "pit_stop", "pit_go", "pit_exit"]
    assert machine.stint == 2


def test_a_rewind_takes_laps_off_the_stint_but_never_below_zero() -> None:
    machine = StintMachine()
    drive(machine, [(0, PIT_NONE, 250), (1, PIT_NONE, 250), (2, PIT_NONE, 250)])
    assert machine.stint_laps == 2
    drive(machine, [(1, PIT_NONE, 250)], t0=10.0)  # a flashback over the line
    assert machine.stint_laps == 1
    drive(machine, [(1, PIT_PITTING, 80), (1, PIT_NONE, 100), (0, PIT_NONE, 250)], t0=20.0)
    assert (machine.stint, machine.stint_laps) == (2, 0)


# -- properties ----------------------------------------------------------------------------

VISIT = re.compile(r"(E(S(G)?)?X)*(E(S(G)?)?)?")  # entry, stop, go, exit; a visit may be open
LETTER = {"pit_entry": "E", "pit_stop": "S", "pit_go": "G", "pit_exit": "X"}

steps = st.lists(st.tuples(st.integers(-2, 2),  # change of laps_done (rewinds included)
                           st.sampled_from([PIT_NONE, PIT_PITTING, PIT_AREA]),
                           st.one_of(st.none(), st.integers(0, 300)),  # speed
                           st.integers(0, 5000)),  # pit stop timer
                 min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_drives_keep_the_stint_machine_consistent(
        drive_steps: list[tuple[int, int, int | None, int]]) -> None:
    machine = StintMachine()
    laps_done, letters = 0, ""
    for i, (delta, status, speed, timer) in enumerate(drive_steps):
        before = machine.snapshot()
        laps_done = max(0, laps_done + delta)
        events = machine.update(session_time_s=float(i), laps_done=laps_done,
                                pit_status=status, speed_kph=speed, pit_stop_timer_ms=timer)
        after = machine.snapshot()
        assert after.stint >= before.stint  # never decreases …
        assert after.stint - before.stint == codes(events).count("pit_exit")  # … only on exit
        assert after.stint_laps >= 0
        assert after.in_pit == (status != PIT_NONE)
        assert all(e.session_time_s == float(i) for e in events)
        if events:
            assert after.in_pit or events[-1].code == "pit_exit"
        letters += "".join(LETTER[e.code] for e in events)
    assert VISIT.fullmatch(letters), letters
    assert machine.stint == 1 + letters.count("X")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([PIT_NONE, PIT_PITTING, PIT_AREA]), min_size=1,
                max_size=40))
def test_laps_in_the_stint_count_only_laps_since_the_last_exit(statuses: list[int]) -> None:
    machine = StintMachine()
    since_exit = 0
    for lap, status in enumerate(statuses):  # one lap completed per update, no rewinds
        events = machine.update(session_time_s=float(lap), laps_done=lap, pit_status=status,
                                speed_kph=0)
        if lap and "pit_exit" in codes(events):
            since_exit = 0
        since_exit += 1 if lap else 0
        assert machine.stint_laps == since_exit


def test_pit_go_says_how_long_the_car_stood_by_the_game_timer_or_else_session_times() -> None:
    by_timer = StintMachine()
    seen: list[PitEvent] = []
    for i, (status, speed, timer) in enumerate([(PIT_NONE, 200, 0), (PIT_PITTING, 80, 0),
                                                (PIT_AREA, 0, 0), (PIT_AREA, 0, 2400),
                                                (PIT_AREA, 30, 0), (PIT_NONE, 90, 0)]):
        seen += by_timer.update(session_time_s=float(i), laps_done=3, pit_status=status,
                                speed_kph=speed, pit_stop_timer_ms=timer)
    assert [e.detail for e in seen if e.code == "pit_go"] == [{"stationary_ms": 2400}]
    by_clock = StintMachine()
    events = drive(by_clock, [(1, PIT_NONE, 250), (1, PIT_AREA, 0), (1, PIT_AREA, 0),
                              (1, PIT_AREA, 0), (1, PIT_AREA, 20)])
    go = [e for e in events if e.code == "pit_go"]
    assert go and go[0].detail["stationary_ms"] == round(
        (go[0].session_time_s - by_clock.pit_stop_s) * 1000) > 0  # type: ignore[operator]
