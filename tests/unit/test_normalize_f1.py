"""F1Normalizer: decoded F1 packets → session, lap, event, stint-state and sample records.

Pure: every packet is built with the real encoders and decoded again (so floats are the
float32 the wire holds); the session clock is the header's `session_time_s`.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decode.f1 import NUM_CARS as NUM_CARS_OF
from gateway.decode.f1 import decode_packet, encode_packet
from gateway.decode.f1.header import Header
from gateway.decode.f1.packet_01_session import SessionData
from gateway.decode.f1.packet_02_lap_data import LapData, LapDataPacket
from gateway.decode.f1.packet_03_event import EventPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetry, CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import CarStatus, CarStatusPacket
from gateway.normalize.f1 import NO_CAR, F1Normalizer, fuel_kg, session_key
from gateway.records import Event, Lap, Record, Sample, Session, StintState
from gateway.sim.f1 import simulate_rigs, simulate_session

RIG = "rig-a"
UID = 0x00C0_FFEE_1234_5678
SID = "rig-a@f1-2024#silverstone#00c0ffee12345678"
NUM_CARS = 22
EMPTY_LAP = LapData._make([0] * len(LapData._fields))  # result_status 0: an empty slot
EMPTY_TEL = CarTelemetry(0, 0.0, 0.0, 0.0, 0, 0, 0, False, 0, 0, (0, 0, 0, 0), (0, 0, 0, 0),
                         (0, 0, 0, 0), 0, (0.0, 0.0, 0.0, 0.0), (0, 0, 0, 0))
EMPTY_STATUS = CarStatus._make([0] * len(CarStatus._fields))
SESSION = SessionData._make([0] * len(SessionData._fields))._replace(
    total_laps=5, session_type=15, track_id=7, session_time_left_s=3600,
    marshal_zones=(), weather_forecast=(), settings=(), weekend_structure=(),
    sector2_start_m=0.0, sector3_start_m=0.0, active_aero_zones_full=(),
    active_aero_zones_partial=(), drs_zones=())

R = TypeVar("R", bound=Record)


def car(lap: int = 1, **kw: Any) -> LapData:
    """An active car's Lap Data on lap `lap` (position 1 unless given)."""
    return EMPTY_LAP._replace(**{"current_lap_num": lap, "car_position": 1,
                                 "result_status": 2, **kw})


class Rig:
    """One rig's F1Normalizer, fed packets that went through encode_packet → decode_packet."""

    def __init__(self, *, sample_hz: float = 10.0, player: int = 0,
                 secondary: int = NO_CAR, fmt: int = 2024) -> None:
        self.norm = F1Normalizer(RIG, sample_hz=sample_hz)
        self.player, self.secondary, self.fmt = player, secondary, fmt
        self.records: list[Record] = []
        self.frame = self.overall = 0  # the header's frame ids: only `frame` ever rewinds

    def send(self, packet_id: int, t: float, body: Any, *, uid: int = UID) -> list[Record]:
        header = Header(self.fmt, 24, 1, 17, 1, packet_id, uid, t, self.frame, self.overall,
                        self.player, self.secondary)
        self.frame += 1
        self.overall += 1
        out = self.norm.feed(decode_packet(encode_packet(header, body)),
                             ts_ns=1_700_000_000_000_000_000 + round(t * 1e9),
                             mono_ns=round(t * 1e9))
        self.records += out
        return out

    def session(self, t: float = 0.0, *, uid: int = UID, **kw: Any) -> list[Record]:
        return self.send(1, t, SESSION._replace(**kw), uid=uid)

    def laps(self, t: float, *cars: LapData, uid: int = UID) -> list[Record]:
        slots = (*cars, *[EMPTY_LAP] * (NUM_CARS_OF[self.fmt] - len(cars)))
        return self.send(2, t, LapDataPacket(slots, 255, 255), uid=uid)

    def telemetry(self, t: float, *speeds_kph: int) -> list[Record]:
        slots = [EMPTY_TEL._replace(speed_kph=v, gear=min(8, 1 + v // 42), engine_rpm=11000)
                 for v in speeds_kph]
        return self.send(6, t, CarTelemetryPacket(
            (*slots, *[EMPTY_TEL] * (NUM_CARS - len(slots))), 255, 255, 0))

    def status(self, t: float, *fuel: float | tuple[float, float]) -> list[Record]:
        """Fuel per car in kg (capacity 110 kg), or (fuel_kg, capacity_kg)."""
        slots = [EMPTY_STATUS._replace(fuel_in_tank_kg=f[0], fuel_capacity_kg=f[1],
                                       visual_tyre_compound=16, tyres_age_laps=2)
                 for f in ((f, 110.0) if isinstance(f, float) else f for f in fuel)]
        return self.send(7, t, CarStatusPacket(
            (*slots, *[EMPTY_STATUS] * (NUM_CARS - len(slots)))))

    def event(self, t: float, code: str, **details: float) -> list[Record]:
        return self.send(3, t, EventPacket(code, details))

    def frame_of(self, t: float, lap: LapData, speed_kph: int, fuel: float) -> list[Record]:
        """One game frame of car 0, in the game's order: Lap Data, Car Telemetry, Car Status."""
        return self.laps(t, lap) + self.telemetry(t, speed_kph) + self.status(t, fuel)

    def of(self, kind: type[R]) -> list[R]:
        return [r for r in self.records if isinstance(r, kind)]


def started() -> Rig:
    rig = Rig()
    rig.session()
    return rig


# -- session -------------------------------------------------------------------------------

def test_the_session_key_is_rig_format_track_and_sixteen_hex_digits_of_the_uid() -> None:
    assert session_key("rig-b", 2024, "monza", 0xAB) == "rig-b@f1-2024#monza#00000000000000ab"
    rig = Rig()
    out = rig.session(12.5)
    assert [type(r) for r in out] == [Session, Event]
    session, start = out
    assert isinstance(session, Session) and isinstance(start, Event)
    assert (session.session_id, session.game, session.track, session.session_type,
            session.total_laps, session.drivers) == (
                SID, "f1-2024", "silverstone", "race", 5, (RIG,))
    assert (start.code, start.car_idx, start.session_time_s) == ("session_start", NO_CAR, 12.5)
    assert rig.session(13.0) == []  # the same session again: nothing new
    other = Rig().session(track_id=99)[0]  # a track this build does not know
    assert other.session_id == "rig-a@f1-2024#track-99#00c0ffee12345678"


def test_nothing_is_emitted_before_the_session_packet_and_its_events_are_held() -> None:
    rig = Rig()
    before = (rig.laps(0.0, car(1)) + rig.telemetry(0.0, 100) + rig.status(0.0, 10.0)
              + rig.event(0.5, "FTLP", vehicle_idx=3, lap_time_s=80.0)
              + rig.laps(1.0, car(2, last_lap_time_ms=80_000)))
    assert before == []
    assert rig.norm.stats["awaiting_session"] == 4
    started = rig.session(2.0)
    # The held event was captured first, so it goes first: a rig's records come out (and get
    # their sequence numbers) in capture order, also when a box starts mid-session.
    assert [(type(r), getattr(r, "code", "")) for r in started] == [
        (Event, "fastest_lap"), (Session, ""), (Event, "session_start")]
    held = started[0]
    assert isinstance(held, Event)
    assert (held.car_idx, held.session_time_s, held.detail, held.mono_ns) == (
        3, 0.5, {"lap_time_s": 80.0}, round(0.5 * 1e9))  # stamped when it came
    rig.laps(3.0, car(2))
    assert rig.of(StintState) and {r.session_id for r in rig.records} == {SID}
    stamps = [r.ts_ns for r in rig.records]
    assert stamps == sorted(stamps)


def test_events_of_a_session_that_never_says_its_track_go_out_under_an_unknown_track() -> None:
    rig = Rig()
    rig.event(1.0, "PENA", penalty_type=4, infringement_type=7, vehicle_idx=2)
    assert rig.records == []
    rig.session(0.0, uid=UID + 1)  # the next session: the first one never sent a Session
    penalty = [e for e in rig.of(Event) if e.game_code == "PENA"]
    assert [(e.session_id, e.car_idx) for e in penalty] == [
        ("rig-a@f1-2024#unknown#00c0ffee12345678", 2)]


def test_a_start_event_before_the_session_becomes_the_session_starts_game_code() -> None:
    rig = Rig()
    assert rig.event(0.0, "SSTA") == []
    start = [r for r in rig.session(0.1) if isinstance(r, Event)]
    assert [(e.code, e.game_code) for e in start] == [("session_start", "SSTA")]
    assert rig.event(0.2, "SSTA") == []  # merged, not a second start


def test_menu_packets_with_uid_zero_are_ignored() -> None:
    rig = Rig()
    assert rig.session(0.0, uid=0) == [] and rig.laps(0.0, car(1), uid=0) == []
    assert rig.norm.stats["menu"] == 2 and rig.norm.stats["sessions"] == 0


def test_a_late_packet_of_an_earlier_session_is_dropped() -> None:
    rig = started()
    rig.session(0.0, uid=UID + 1)
    assert rig.laps(5.0, car(1), uid=UID) == [] and rig.session(5.0, uid=UID) == []
    assert rig.norm.stats["stale_session"] == 2


def test_a_new_session_uid_on_the_same_rig_is_a_second_session() -> None:
    rig = started()
    rig.laps(1.0, car(1))
    rig.session(0.0, uid=UID + 1, track_id=11)  # a restart or a save reload: a new uid
    rig.laps(0.5, car(1), uid=UID + 1)
    first, second = rig.of(Session)
    assert (first.session_id, second.session_id) == (
        SID, "rig-a@f1-2024#monza#00c0ffee12345679")
    assert [e.session_id for e in rig.of(Event) if e.code == "session_start"] == [
        first.session_id, second.session_id]
    assert rig.norm.stats["sessions"] == 2
    assert rig.of(StintState)[-1].session_id == second.session_id


def test_session_end_is_emitted_once() -> None:
    rig = started()
    ends = rig.event(100.0, "SEND") + rig.event(100.1, "SEND")
    assert [(e.code, e.game_code) for e in ends if isinstance(e, Event)] == [
        ("session_end", "SEND")]


# -- laps ----------------------------------------------------------------------------------

def test_a_lap_closes_when_the_lap_number_rises_with_time_sectors_and_fuel() -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 0, 10.0)  # lap 1: its Car Status comes after its Lap Data
    rig.frame_of(0.05, car(1, current_lap_time_ms=50), 5, 10.0)
    rig.frame_of(30.0, car(1, sector1_ms=30_000, sector=1), 250, 9.5)
    rig.frame_of(61.0, car(1, sector1_ms=30_000, sector2_ms=31_000, sector=2), 250, 8.9)
    rig.frame_of(89.95, car(1, sector1_ms=30_000, sector2_ms=31_000, sector=2), 250, 8.4)
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000, car_position=3), 250, 8.4)
    rig.frame_of(179.95, car(2), 250, 6.9)
    rig.frame_of(180.0, car(3, last_lap_time_ms=89_000), 250, 6.9)
    laps = rig.of(Lap)
    assert [lap.lap_no for lap in laps] == [1, 2]
    first, second = laps
    assert (first.lap_time_ms, first.sector_ms, first.valid, first.position) == (
        90_000, (30_000, 31_000, 29_000), True, 3)
    assert first.fuel_level == pytest.approx(8.4)
    assert first.fuel_used == pytest.approx(1.6)
    assert (first.own_car, first.stint, first.lap_in_stint, first.fuel_unit) == (
        True, 1, 1, "kg")
    assert (first.tyre_compound, first.tyre_age_laps) == ("soft", 2)
    assert second.sector_ms == ()  # no sector times seen: none made up
    assert second.fuel_used == pytest.approx(1.5) and second.lap_in_stint == 2


def test_an_invalidated_lap_stays_invalid_and_the_next_one_starts_valid() -> None:
    rig = started()
    rig.laps(0.0, car(1))
    rig.laps(20.0, car(1, current_lap_invalid=True))
    rig.laps(21.0, car(1))  # the flag is per lap: one sighting is enough
    rig.laps(90.0, car(2, last_lap_time_ms=90_000))
    rig.laps(180.0, car(3, last_lap_time_ms=88_000))
    assert [lap.valid for lap in rig.of(Lap)] == [False, True]


def test_only_the_player_cars_laps_are_own() -> None:
    rig = Rig(player=0, secondary=2)
    rig.session()
    rig.laps(0.0, car(1), car(1), car(1))
    rig.laps(90.0, *[car(2, last_lap_time_ms=90_000 + i) for i in range(3)])
    assert [(lap.car_idx, lap.own_car) for lap in rig.of(Lap)] == [
        (0, True), (1, False), (2, True)]
    assert {(s.car_idx, s.own_car) for s in rig.of(StintState)} == {
        (0, True), (1, False), (2, True)}


def test_the_car_taking_the_flag_closes_its_last_lap_once() -> None:
    rig = started()
    rig.laps(0.0, car(5, last_lap_time_ms=91_000))  # seen first on the last lap
    rig.laps(89.0, car(5, last_lap_time_ms=91_000, result_status=3))  # flag, time not yet
    assert rig.of(Lap) == []
    rig.laps(90.0, car(5, last_lap_time_ms=90_500, result_status=3))  # the lap number stays
    rig.laps(95.0, car(5, last_lap_time_ms=90_500, result_status=3))
    rig.laps(99.0, car(6, last_lap_time_ms=12_000, result_status=3))  # cool-down: no laps
    assert [(lap.lap_no, lap.lap_time_ms) for lap in rig.of(Lap)] == [(5, 90_500)]
    assert rig.of(Lap)[0].lap_in_stint == 1


def test_a_retired_car_never_closes_its_lap() -> None:
    rig = started()
    rig.laps(0.0, car(1))
    rig.laps(50.0, car(1, result_status=7))  # retired
    rig.laps(90.0, car(2, last_lap_time_ms=90_000, result_status=7))
    assert rig.of(Lap) == []


def test_a_flashback_over_the_line_reopens_the_lap_and_its_stint_count() -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 0, 10.0)
    rig.frame_of(0.1, car(1, current_lap_time_ms=100), 10, 10.0)
    rig.frame_of(89.9, car(1, current_lap_time_ms=89_900), 250, 8.4)
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000), 250, 8.4)
    rig.frame_of(180.0, car(3, last_lap_time_ms=90_000), 250, 6.8)
    from_frame = rig.frame - 1
    rig.event(181.0, "FLBK", flashback_frame_id=5, flashback_session_time_s=170.0)
    rig.frame = 5  # the game's frame ids rewind with it; the overall ones go on
    rig.frame_of(170.0, car(2, last_lap_time_ms=90_000, current_lap_time_ms=80_000), 250, 7.0)
    rig.frame_of(179.0, car(3, last_lap_time_ms=89_000), 250, 6.9)
    laps = rig.of(Lap)
    assert [(lap.lap_no, lap.lap_time_ms) for lap in laps] == [
        (1, 90_000), (2, 90_000), (2, 89_000)]  # lap 2 again, with its new time
    assert [lap.lap_in_stint for lap in laps] == [1, 2, 2]
    assert laps[-1].fuel_used == pytest.approx(1.4)  # 8.4 at the lap's start, restored
    assert rig.norm.stats["lap_rewound"] == 0  # undone by the flashback, not guessed
    flashback = [e for e in rig.of(Event) if e.code == "flashback"]
    assert [(e.game_code, e.detail) for e in flashback] == [
        ("FLBK", {"flashback_frame_id": 5, "flashback_session_time_s": 170.0,
                  "from_frame_id": from_frame, "from_session_time_s": 180.0,
                  "overall_frame_id": from_frame + 1})]


def flash_back(rig: Rig, how: str, *, at: float, to: float, to_frame: int) -> None:
    """The game's flashback to session time `to`: the FLBK event (`how` == "event") and the
    frame ids going back, or the frame ids alone (`how` == "frames": the event was lost)."""
    if how == "event":
        rig.event(at, "FLBK", flashback_frame_id=to_frame, flashback_session_time_s=to)
    rig.frame = to_frame


@pytest.mark.parametrize("how", ["event", "frames"])
def test_a_flashback_that_undoes_a_track_limits_invalidation_leaves_the_lap_valid(
        how: str) -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 0, 20.0)
    rig.frame_of(10.0, car(1, current_lap_time_ms=10_000), 250, 19.8)
    rig.frame_of(20.0, car(1, current_lap_time_ms=20_000, current_lap_invalid=True), 250, 19.6)
    rig.frame_of(21.0, car(1, current_lap_time_ms=21_000, current_lap_invalid=True), 250, 19.6)
    flash_back(rig, how, at=21.5, to=15.0, to_frame=7)
    rig.frame_of(15.0, car(1, current_lap_time_ms=15_000), 250, 19.7)  # valid again
    rig.frame_of(89.9, car(1, current_lap_time_ms=89_900), 250, 18.4)
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000), 250, 18.4)
    assert [(lap.lap_no, lap.valid) for lap in rig.of(Lap)] == [(1, True)]
    (flashback,) = [e for e in rig.of(Event) if e.code == "flashback"]
    assert (flashback.game_code, flashback.detail["flashback_session_time_s"],
            flashback.detail["from_session_time_s"]) == ("FLBK" if how == "event" else "",
                                                         15.0, 21.0)
    assert rig.norm.stats["flashbacks"] == 1  # the event and the frames: one flashback


def test_an_invalidation_after_the_flashback_target_still_counts() -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 0, 20.0)
    rig.frame_of(10.0, car(1, current_lap_time_ms=10_000, current_lap_invalid=True), 250, 19.8)
    flash_back(rig, "event", at=21.5, to=15.0, to_frame=4)
    rig.frame_of(15.0, car(1, current_lap_time_ms=15_000, current_lap_invalid=True), 250, 19.7)
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000), 250, 18.4)
    assert [lap.valid for lap in rig.of(Lap)] == [False]


@pytest.mark.parametrize("how", ["event", "frames"])
def test_a_flashback_from_the_pit_lane_to_before_pit_entry_undoes_the_pit_visit(
        how: str) -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 250, 20.0)
    rig.frame_of(80.0, car(1, current_lap_time_ms=80_000), 250, 18.7)
    rig.frame_of(85.0, car(1, current_lap_time_ms=85_000, pit_status=1), 80, 18.6)
    rig.frame_of(86.0, car(1, current_lap_time_ms=86_000, pit_status=1,
                           pit_lane_time_in_lane_ms=1_000), 80, 18.6)
    after = len(rig.records)
    flash_back(rig, how, at=86.5, to=82.0, to_frame=7)
    rig.frame_of(82.0, car(1, current_lap_time_ms=82_000), 250, 18.65)  # on track again
    rig.frame_of(89.9, car(1, current_lap_time_ms=89_900), 250, 18.4)  # … and stays out
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000), 250, 18.4)
    rig.frame_of(179.9, car(2, current_lap_time_ms=89_900), 250, 16.8)
    rig.frame_of(180.0, car(3, last_lap_time_ms=90_000), 250, 16.8)
    assert [e.code for e in rig.of(Event)] == ["session_start", "pit_entry", "flashback"]
    laps = [(lap.lap_no, lap.pit_in, lap.pit_out, lap.stint, lap.lap_in_stint)
            for lap in rig.of(Lap)]
    assert laps == [(1, False, False, 1, 1), (2, False, False, 1, 2)]
    before = [r for r in rig.records[:after] if isinstance(r, StintState)]
    assert before[-1].in_pit  # what the cloud had before the flashback …
    flashback, undone = rig.records[after:after + 2]  # … is undone at once
    assert isinstance(flashback, Event) and flashback.code == "flashback"
    assert isinstance(undone, StintState)
    assert (undone.in_pit, undone.stint, undone.pit_entry_s) == (False, 1, None)


def test_the_rest_of_the_frame_the_flashback_came_in_is_not_fed() -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 250, 20.0)
    rig.frame_of(85.0, car(1, current_lap_time_ms=85_000, pit_status=1), 80, 18.6)
    rig.frame -= 1  # the FLBK event goes out in the frame just sent …
    rig.event(85.0, "FLBK", flashback_frame_id=2, flashback_session_time_s=80.0)
    rig.frame -= 1  # … and more of that frame follows it: the undone timeline, in the pit
    assert rig.laps(85.0, car(1, current_lap_time_ms=85_000, pit_status=1)) == []
    rig.frame = 2
    rig.frame_of(80.0, car(1, current_lap_time_ms=80_000), 250, 18.7)
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000), 250, 18.4)
    assert [e.code for e in rig.of(Event)] == ["session_start", "pit_entry", "flashback"]
    assert rig.norm.stats["flashback_stale"] == 1
    assert [(lap.pit_in, lap.stint) for lap in rig.of(Lap)] == [(False, 1)]


def test_a_late_datagram_of_an_earlier_frame_is_no_flashback() -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 250, 20.0)
    rig.frame, rig.overall = rig.frame - 3, rig.overall - 3  # both ids back: reordered UDP
    rig.laps(0.0, car(1))
    rig.frame, rig.overall = rig.frame + 3, rig.overall + 3
    rig.frame_of(0.2, car(1, current_lap_time_ms=200), 250, 20.0)
    assert rig.norm.stats["flashbacks"] == 0


# -- fuel ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "expected"), [
    (None, None),
    (EMPTY_STATUS._replace(fuel_in_tank_kg=0.0, fuel_capacity_kg=0.0), None),  # restricted
    (EMPTY_STATUS._replace(fuel_in_tank_kg=0.0, fuel_capacity_kg=110.0), 0.0),  # really empty
    (EMPTY_STATUS._replace(fuel_in_tank_kg=12.34567, fuel_capacity_kg=110.0), 12.346),
])
def test_fuel_is_none_only_when_unknown(status: CarStatus | None,
                                        expected: float | None) -> None:
    assert fuel_kg(status) == expected


def test_a_restricted_car_has_unknown_fuel_not_an_empty_tank() -> None:
    rig = started()
    for t, lap_no, last_ms in ((0.0, 1, 0), (0.1, 1, 0), (90.0, 2, 90_000)):
        rig.laps(t, car(lap_no, last_lap_time_ms=last_ms),
                 car(lap_no, last_lap_time_ms=last_ms, car_position=2))
        rig.telemetry(t, 250, 250)
        rig.status(t, 10.0, (0.0, 0.0))  # car 1: another player's restricted telemetry
    own, other = rig.of(Lap)
    assert (other.car_idx, other.fuel_level, other.fuel_used) == (1, None, None)
    assert (own.car_idx, own.fuel_level, own.fuel_used) == (0, 10.0, 0.0)
    assert rig.norm.stats["lap_fuel_unknown"] == 1


# -- pit and stint -------------------------------------------------------------------------

def test_a_pit_stop_yields_pit_events_and_the_out_lap_starts_the_next_stint() -> None:
    rig = started()
    rig.frame_of(0.0, car(1), 250, 20.0)
    rig.frame_of(85.0, car(1, pit_status=1), 80, 18.6)  # entry at the end of lap 1
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000, pit_status=1,
                           pit_lane_time_in_lane_ms=5_000), 80, 18.4)
    # Lap Data sees the speed of the frame before (Car Telemetry follows it in a frame)
    rig.frame_of(91.0, car(2, pit_status=2, pit_lane_time_in_lane_ms=6_000), 0, 18.4)
    rig.frame_of(92.0, car(2, pit_status=2, pit_lane_time_in_lane_ms=7_000), 0, 18.4)
    rig.frame_of(94.0, car(2, pit_status=2, pit_lane_time_in_lane_ms=9_000), 30, 18.4)
    rig.frame_of(94.5, car(2, pit_status=2, pit_lane_time_in_lane_ms=9_500), 40, 18.4)
    rig.frame_of(95.0, car(2, pit_status=1, pit_lane_time_in_lane_ms=10_000), 80, 18.4)
    rig.frame_of(99.0, car(2, pit_lane_time_in_lane_ms=0), 200, 18.3)  # exit
    rig.frame_of(190.0, car(3, last_lap_time_ms=100_000), 250, 16.8)
    rig.frame_of(280.0, car(4, last_lap_time_ms=90_000), 250, 15.2)
    pit = [(e.code, e.lap_no, e.session_time_s, e.car_idx) for e in rig.of(Event)
           if e.code.startswith("pit_")]
    assert pit == [("pit_entry", 1, 85.0, 0), ("pit_stop", 2, 92.0, 0),
                   ("pit_go", 2, 94.5, 0), ("pit_exit", 2, 99.0, 0)]
    last = rig.of(Event)[-1]
    assert (last.code, last.detail) == ("pit_exit", {"pit_lane_time_ms": 10_000})
    laps = [(lap.lap_no, lap.stint, lap.lap_in_stint, lap.pit_in, lap.pit_out)
            for lap in rig.of(Lap)]
    assert laps == [(1, 1, 1, True, False), (2, 2, 1, False, True), (3, 2, 2, False, False)]
    state = rig.of(StintState)[-1]
    assert (state.stint, state.stint_laps, state.in_pit, state.own_car) == (2, 2, False, True)
    assert (state.pit_entry_s, state.pit_stop_s, state.pit_go_s, state.pit_exit_s) == (
        85.0, 92.0, 94.5, 99.0)


def test_a_car_starting_in_the_pit_lane_makes_no_pit_events() -> None:
    rig = started()
    rig.frame_of(0.0, car(1, pit_status=2), 0, 20.0)
    rig.frame_of(5.0, car(1, pit_status=2), 0, 20.0)
    rig.frame_of(8.0, car(1, pit_status=1), 60, 20.0)
    rig.frame_of(20.0, car(1), 200, 19.5)
    rig.frame_of(90.0, car(2, last_lap_time_ms=90_000), 250, 18.4)
    assert [e.code for e in rig.of(Event)] == ["session_start"]
    (lap,) = rig.of(Lap)
    assert (lap.stint, lap.lap_in_stint, lap.pit_in, lap.pit_out) == (1, 1, False, True)


# -- samples -------------------------------------------------------------------------------

def feed_telemetry(rig: Rig, *, seconds: float, rate_hz: float) -> list[Sample]:
    rig.laps(0.0, car(1))
    rig.status(0.0, 20.0)
    for i in range(round(seconds * rate_hz)):
        rig.telemetry(i / rate_hz, 200)
    return rig.of(Sample)


@pytest.mark.parametrize(("rate_hz", "sample_hz", "expected"), [
    (20.0, 10.0, 100), (60.0, 10.0, 100), (20.0, 4.0, 40), (5.0, 10.0, 50)])
def test_samples_are_downsampled_to_sample_hz(rate_hz: float, sample_hz: float,
                                              expected: int) -> None:
    rig = Rig(sample_hz=sample_hz)
    rig.session()
    samples = feed_telemetry(rig, seconds=10.0, rate_hz=rate_hz)
    assert len(samples) == expected
    last = samples[-1]
    assert (last.car_idx, last.speed_kph, last.lap_no, last.fuel_level,
            last.tyre_compound, last.session_id) == (0, 200, 1, 20.0, "soft", SID)


@settings(max_examples=60, deadline=None)
@given(rate_hz=st.integers(2, 60), sample_hz=st.floats(0.5, 30.0))
def test_samples_are_never_closer_than_the_sample_period_nor_much_further(
        rate_hz: int, sample_hz: float) -> None:
    rig = Rig(sample_hz=sample_hz)
    rig.session()
    samples = feed_telemetry(rig, seconds=3.0, rate_hz=rate_hz)
    period_ns, frame_ns = 1e9 / sample_hz, 1e9 / rate_hz
    gaps = [b.mono_ns - a.mono_ns for a, b in itertools.pairwise(samples)]
    assert samples and samples[0].mono_ns == 0
    assert all(period_ns - 1.1e6 <= gap <= period_ns + frame_ns for gap in gaps)


def test_a_rewind_restarts_the_sample_timer() -> None:
    rig = Rig(sample_hz=1.0)
    rig.session()
    feed_telemetry(rig, seconds=2.0, rate_hz=10.0)  # samples at 0 s and 1 s
    assert len(rig.telemetry(0.5, 150)) == 1  # a flashback to 0.5 s: sampled at once
    assert rig.telemetry(0.6, 150) == []


def test_the_secondary_player_car_gets_samples_too() -> None:
    rig = Rig(player=0, secondary=3)  # split screen: two players on one rig
    rig.session()
    for i in range(20):  # 1 s at 20 Hz
        t = i / 20
        rig.laps(t, car(1), car(1, car_position=2), car(1, car_position=3),
                 car(1, car_position=4))
        rig.status(t, 30.0, 31.0, 32.0, 33.0)
        rig.telemetry(t, 200, 201, 202, 203)
    by_car = Counter(s.car_idx for s in rig.of(Sample))
    assert by_car == {0: 10, 3: 10}  # 10 Hz each; the AI cars in between get none
    third = [s for s in rig.of(Sample) if s.car_idx == 3]
    assert {(s.speed_kph, s.fuel_level, s.position) for s in third} == {(203, 33.0, 4)}


def test_sample_hz_zero_turns_samples_off() -> None:
    rig = Rig(sample_hz=0)
    rig.session()
    assert feed_telemetry(rig, seconds=2.0, rate_hz=20.0) == []
    assert rig.of(StintState)  # the rest still flows


# -- a whole simulated race ------------------------------------------------------------------

@pytest.mark.parametrize("sim", [
    {"laps": 5, "rate_hz": 4, "lap_time_s": 15.0, "seed": 1},  # the shipped sample's race
    {"laps": 6, "rate_hz": 10, "lap_time_s": 20.0, "seed": 3},
])
def test_a_simulated_race_gives_every_own_lap_once_and_one_pit_stop(
        sim: dict[str, Any]) -> None:
    norm = F1Normalizer(RIG)
    records: list[Record] = []
    for t, datagram in simulate_session(**sim):
        records += norm.feed(decode_packet(datagram), ts_ns=round(t * 1e9),
                             mono_ns=round(t * 1e9))
    laps = sim["laps"]
    own = [r for r in records if isinstance(r, Lap) and r.own_car]
    assert [lap.lap_no for lap in own] == list(range(1, laps + 1))
    assert all(lap.fuel_used is not None and 1.4 < lap.fuel_used < 1.8 for lap in own)
    assert [(lap.stint, lap.lap_in_stint) for lap in own] == [
        (1, 1), (1, 2), (1, 3), *((2, n) for n in range(1, laps - 2))]
    pit = Counter((e.car_idx, e.code) for e in records
                  if isinstance(e, Event) and e.code.startswith("pit_"))
    assert pit == {(0, "pit_entry"): 1, (0, "pit_stop"): 1, (0, "pit_go"): 1,
                   (0, "pit_exit"): 1}
    others = Counter(r.car_idx for r in records if isinstance(r, Lap) and not r.own_car)
    assert others == {1: laps, 2: laps, 3: laps}
    (sid,) = {r.session_id for r in records}
    assert re.fullmatch(r"rig-a@f1-2024#silverstone#[0-9a-f]{16}", sid)
    assert sum(isinstance(r, Session) for r in records) == 1


def test_session_says_weather_formula_duration_and_temperatures() -> None:
    rig = Rig()
    rig.session(weather=3, formula=2, session_duration_s=1800, track_temp_c=31, air_temp_c=22)
    (session,) = rig.of(Session)
    assert (session.weather, session.formula, session.duration_s) == ("light_rain", "f2", 1800)
    assert (session.track_temp_c, session.air_temp_c, session.historical) == (31, 22, False)
    rig.session(t=5.0, weather=4, formula=2, session_duration_s=1800)
    assert len(rig.of(Session)) == 1  # the weather changing is not a new session


def test_a_sample_carries_steer_position_tyres_fuel_laps_and_the_game_extras() -> None:
    rig = started()
    tel = EMPTY_TEL._replace(speed_kph=201, gear=6, engine_rpm=11000, steer=-0.25, drs=True,
                             tyre_surface_temp_c=(90, 91, 92, 93),
                             tyre_inner_temp_c=(100, 101, 102, 103))
    status = EMPTY_STATUS._replace(fuel_in_tank_kg=40.0, fuel_capacity_kg=110.0,
                                   fuel_remaining_laps=12.5, visual_tyre_compound=17,
                                   tyres_age_laps=4, ers_store_energy_j=2_000_000.0,
                                   ers_deploy_mode=2)
    rig.laps(1.0, car(lap=2, car_position=3, lap_distance_m=123.0))
    rig.send(7, 1.0, CarStatusPacket((status, *[EMPTY_STATUS] * (NUM_CARS - 1))))
    rig.send(6, 1.0, CarTelemetryPacket((tel, *[EMPTY_TEL] * (NUM_CARS - 1)), 255, 255, 0))
    (sample,) = rig.of(Sample)
    assert (sample.steer, sample.position, sample.fuel_laps) == (-0.25, 3, 12.5)
    assert (sample.tyre_compound, sample.tyre_age_laps) == ("medium", 4)
    assert sample.tyre_temp_c == (90, 91, 92, 93)
    assert sample.detail == {"drs": True, "ers_store_j": 2_000_000, "ers_mode": 2}


def test_a_lap_carries_penalties_warnings_and_pit_stops() -> None:
    rig = started()
    rig.laps(1.0, car(lap=1))
    rig.laps(2.0, car(lap=1, penalties_s=5, total_warnings=2, num_pit_stops=1, grid_position=7))
    rig.laps(3.0, car(lap=2, last_lap_time_ms=90_000, penalties_s=5, total_warnings=2,
                      num_pit_stops=1, grid_position=7))
    (lap,) = rig.of(Lap)
    assert lap.detail == {"penalties_s": 5, "warnings": 2, "pit_stops": 1, "grid_position": 7}


def test_samples_carry_the_latest_tyre_wear_from_car_damage() -> None:
    from gateway.decode.f1 import SIZES
    from gateway.decode.f1.header import HEADER_SIZE, encode
    from gateway.decode.f1.packet_10_car_damage import CarDamagePacket

    rig = started()
    zeros = decode_packet(encode(Header(2024, 24, 1, 17, 1, 10, UID, 0.0, 0, 0, 0, 255))
                          + bytes(SIZES[(2024, 10)] - HEADER_SIZE))
    assert isinstance(zeros.body, CarDamagePacket)
    empty = zeros.body.cars[0]
    worn = empty._replace(tyres_wear_pct=(12.25, 13.0, 8.5, 9.0))
    rig.send(10, 0.5, CarDamagePacket((worn, *[empty] * (NUM_CARS - 1))))
    rig.frame_of(1.0, car(lap=1), 200, 50.0)
    rig.frame_of(1.2, car(lap=1), 200, 50.0)
    samples = rig.of(Sample)
    assert samples and all(s.tyre_wear_pct == (12.2, 13.0, 8.5, 9.0) for s in samples)



_MID_SESSION = [(ts_ns, decode_packet(d)) for ts_ns, _, d in
                simulate_rigs(1, fmt=2025, laps=3, hz=20.0, lap_time_s=12.0, num_cars=6)]


_EVENT_AT = [i for i, (_, p) in enumerate(_MID_SESSION) if isinstance(p.body, EventPacket)]


@pytest.mark.parametrize("start", _EVENT_AT[1:len(_EVENT_AT) // 2])  # not the first SSTA
def test_a_box_starting_mid_session_emits_in_capture_order(start: int) -> None:
    """Per rig, output order (which becomes the outbox's sequence order) is capture order,
    also for a box that comes in mid-session just before an event — as after a restart."""
    norm = F1Normalizer(RIG)
    stamps: list[int] = []
    for ts_ns, packet in _MID_SESSION[start:]:
        stamps += [r.ts_ns for r in norm.feed(packet, ts_ns=ts_ns, mono_ns=ts_ns)]
    assert stamps and stamps == sorted(stamps)
