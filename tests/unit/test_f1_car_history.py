"""CarHistory: the bounded per-car change points a flashback is undone from. Pure."""

from __future__ import annotations

from gateway.normalize.f1_cars import FLBK_WINDOW_FRAMES, CarHistory, CarLap, FrameClock, Restore


def lap_at(lap_no: int) -> CarLap:
    return CarLap(lap_no=lap_no, last_lap_ms=0, fuel_start=None)


def test_a_restore_gives_the_last_change_at_or_before_the_target_and_drops_later_ones() -> None:
    history = CarHistory()
    for t, lap_no in ((0.0, 1), (90.0, 2), (180.0, 3)):
        history.remember(0, t, lap_at(lap_no))
    restored = history.restore(0, 170.0)
    assert isinstance(restored, CarLap) and restored.lap_no == 2
    restored.lap_no = 99  # a copy: the history is untouched
    again = history.restore(0, 175.0)
    assert isinstance(again, CarLap) and again.lap_no == 2
    history.remember(0, 171.0, lap_at(7))  # the new timeline
    latest = history.restore(0, 200.0)
    assert isinstance(latest, CarLap) and latest.lap_no == 7  # lap 3 of the old one is gone


def test_the_stint_machine_is_copied_not_shared() -> None:
    history = CarHistory()
    car = lap_at(1)
    history.remember(0, 1.0, car)
    car.machine.stint = 5
    restored = history.restore(0, 2.0)
    assert isinstance(restored, CarLap) and restored.machine.stint == 1


def test_a_car_first_seen_after_the_target_is_forgotten_one_older_than_the_history_kept_is_not(
        ) -> None:
    history = CarHistory(per_car=3)
    history.remember(0, 50.0, lap_at(1))
    assert history.restore(0, 40.0) is Restore.FORGET
    assert history.restore(0, 60.0) is Restore.UNKNOWN  # forgotten: nothing left
    for t in range(10, 15):  # five points, three kept: the oldest fell off
        history.remember(1, float(t), lap_at(t))
    assert history.restore(1, 5.0) is Restore.UNKNOWN
    kept = history.restore(1, 12.5)
    assert isinstance(kept, CarLap) and kept.lap_no == 12  # and the history is still there


def test_the_frame_clock_finds_an_unannounced_rewind_but_not_a_late_datagram() -> None:
    clock = FrameClock()
    assert [clock.see(f, f, f / 60) for f in range(1, 100)] == [""] * 99
    assert clock.see(98, 98, 98 / 60) == ""  # both ids back: a late datagram
    assert clock.see(40, 100, 40 / 60) == FrameClock.REWIND
    assert (clock.frame, clock.time_s) == (99, 99 / 60)  # still where it came from
    clock.rewound(40, 40 / 60, flbk_frame=None, overall=100)
    assert clock.see(41, 101, 41 / 60) == ""


def test_after_an_flbk_the_rest_of_its_frame_is_stale_and_its_rewind_not_a_second_one() -> None:
    clock = FrameClock()
    for f in range(1, 100):
        clock.see(f, f, f / 60)
    clock.rewound(40, 40 / 60, flbk_frame=99, overall=100)  # the FLBK came in frame 99
    assert clock.see(99, 100, 99 / 60) == FrameClock.STALE  # more of frame 99
    assert clock.see(40, 101, 40 / 60) == ""  # the new timeline
    assert clock.see(41, 102, 41 / 60) == ""


def test_stale_frames_are_dropped_only_for_a_bounded_window() -> None:
    clock = FrameClock()
    clock.see(500, 500, 5.0)
    clock.rewound(10, 0.1, flbk_frame=500, overall=500)
    assert clock.see(501, 501, 5.01) == FrameClock.STALE
    # a game that did not rewind its frame ids: after the window, nothing more is dropped
    assert clock.see(500 + FLBK_WINDOW_FRAMES + 1, 500 + FLBK_WINDOW_FRAMES + 1, 7.0) == ""
