"""The box's merge of several shims' views: one writer per team car, session keys, resets."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.decode.irsdk import session_yaml
from gateway.errors import MalformedPacket
from gateway.normalize.iracing_box import IRacingBox
from gateway.normalize.iracing_session import facts_from, session_key
from gateway.records import Event, Lap, Record, Session, StintState
from gateway.shim.reader import trim
from tests.irsdk_writer import default_values
from tests.irsdk_writer import session_yaml as make_yaml

CAR = 3


def info(**kw: Any) -> dict[str, Any]:
    doc = session_yaml.parse(make_yaml(car_idx=CAR, **kw).encode())
    return trim(doc["WeekendInfo"], doc["SessionInfo"], doc["DriverInfo"])


class Pc:
    """One team member's PC as the box sees it: frames with a session time."""

    def __init__(self, box: IRacingBox, shim: str, *, in_car: bool, **yaml: Any) -> None:
        self.box, self.shim, self.in_car = box, shim, in_car
        self.values = default_values(CAR)
        self.values.update(SessionTime=100.0, LapCompleted=0, CarIdxLapCompleted=[0] * 64)
        if not in_car:  # the anti-cheat view: no fuel, no lap counter
            self.values.update(FuelLevel=0.0, LapCompleted=0, Speed=0.0)
        self.out: list[Record] = []
        self.yaml = yaml
        self.held: list[dict[str, Any]] | None = None  # frames buffered while the link is down
        self.picture: dict[str, Any] = {}  # the last frame the box got
        self.send_info(**yaml)
        self.tick()

    def send_info(self, **yaml: Any) -> None:
        self.out += self.box.on_frame(self.shim, "info", info(**yaml), now_s=self.t(),
                                      ts_ns=1, mono_ns=1)

    def t(self) -> float:
        return float(self.values["SessionTime"])

    def tick(self, dt: float = 0.1, **changes: Any) -> list[Record]:
        self.values["SessionTime"] = round(self.t() + dt, 3)
        self.values.update(changes)
        frame = {"vars": dict(self.values), "full": True}
        if self.held is not None:
            self.held.append(frame)
            return []
        self.picture = frame
        return self.send(frame, now_s=self.t())

    def send(self, frame: dict[str, Any], *, now_s: float) -> list[Record]:
        got = self.box.on_frame(self.shim, "tel", frame, now_s=now_s, ts_ns=2, mono_ns=2)
        self.out += got
        return got

    def drop(self) -> None:
        """The link to the box goes down; the shim keeps reading and buffers."""
        self.held = []

    def reconnect(self, *, now_s: float) -> None:
        """As the shim's link does: the info, the last picture it sent, then its buffer."""
        held, self.held = self.held or [], None
        self.out += self.box.on_frame(self.shim, "info", info(**self.yaml), now_s=now_s,
                                      ts_ns=1, mono_ns=1)
        for frame in (self.picture, *held):
            self.send(frame, now_s=now_s)
        self.picture = held[-1] if held else self.picture

    def lap(self, n: int, lap_time: float, fuel: float) -> None:
        arr = list(self.values["CarIdxLapCompleted"])
        arr[CAR] = n
        changes: dict[str, Any] = {"CarIdxLapCompleted": arr}
        if self.in_car:
            changes.update(LapCompleted=n, FuelLevel=fuel)
        self.tick(**changes)
        self.tick(LapLastLapTime=lap_time)


def laps(records: list[Record]) -> list[Lap]:
    return [r for r in records if isinstance(r, Lap)]


def test_the_session_key_is_teamtactics_for_team_and_solo_sessions():
    team = facts_from(info(team_name="Pit  Crew", session_id=7001, subsession_id=9001))
    assert session_key(team, 2) == "Pit  Crew@7001#9001#2"
    solo = facts_from(info(session_id=0, team_id=0, driver_name="Ann Able",
                           car_path="mx5 mx52016", track="spa combined"))
    assert session_key(solo, 0) == "Ann Able@mx5 mx52016#spa combined#0"
    slash = facts_from(info(team_name="A/B Racing"))
    assert "/" not in session_key(slash, 0)


def test_only_the_in_car_client_writes_laps_while_a_teammates_pc_is_shadowed():
    box = IRacingBox()
    ann = Pc(box, "ann-pc", in_car=True, my_user_id=111, driver_user_id=111)
    bob = Pc(box, "bob-pc", in_car=False, my_user_id=222, driver_user_id=111)
    for n in (1, 2, 3):
        ann.lap(n, 90.0 + n, fuel=30.0 - 3 * n)
        bob.lap(n, 90.0 + n, fuel=0.0)
    assert bob.out == [], "a teammate's view must not duplicate the driver's records"
    assert box.stats["shadowed"] > 0
    got = laps(ann.out)
    assert [(lap.lap_no, lap.detail["source"]) for lap in got] == [(1, "ann-pc"), (2, "ann-pc"), (3, "ann-pc")]
    assert [lap.fuel_used for lap in got] == [3.0, 3.0, 3.0]
    assert all(lap.fuel_unit == "l" and lap.own_car for lap in got)
    (session,) = [r for r in ann.out if isinstance(r, Session)]
    assert session.session_id == "Pit  Crew@7001#9001#0" and session.game == "iracing"
    assert session.session_type == "Practice" and session.time_left_s == 600


def test_a_teammates_pc_fills_laps_without_fuel_when_the_drivers_pc_goes_quiet():
    box = IRacingBox(stale_s=1.0)
    ann = Pc(box, "ann-pc", in_car=True, my_user_id=111, driver_user_id=111)
    bob = Pc(box, "bob-pc", in_car=False, my_user_id=222, driver_user_id=111)
    ann.lap(1, 91.0, fuel=27.0)
    bob.lap(1, 91.0, fuel=0.0)
    bob.tick(dt=2.0)  # Ann's PC has said nothing for 2 s
    bob.lap(2, 92.0, fuel=0.0)
    (lap2,) = laps(bob.out)
    assert lap2.lap_no == 2 and lap2.detail["source"] == "bob-pc" and lap2.rig == "iracing-car3" and lap2.lap_time_ms == 92000
    assert lap2.fuel_level is None and lap2.fuel_used is None
    assert [lap.lap_no for lap in laps(ann.out)] == [1]
    assert box.stats["source_changed"] == 1


def test_after_a_driver_swap_the_new_drivers_pc_writes_and_the_stint_carries_on():
    box = IRacingBox()
    ann = Pc(box, "ann-pc", in_car=True, my_user_id=111, driver_user_id=111)
    bob = Pc(box, "bob-pc", in_car=False, my_user_id=222, driver_user_id=111)
    ann.lap(1, 91.0, fuel=27.0)
    ann.tick(OnPitRoad=True, PlayerTrackSurface=2, Speed=20.0,
             CarIdxTrackSurface=_surface(2))
    ann.tick(PlayerCarInPitStall=True, Speed=0.0, CarIdxTrackSurface=_surface(1))
    ann.tick(OnPitRoad=False, CarIdxTrackSurface=_surface(-1))  # out of the world: the swap
    for pc in (ann, bob):
        pc.send_info(my_user_id=111 if pc is ann else 222, driver_user_id=222,
                     driver_name="Bob Baker")
    bob.values.update(SessionTime=ann.t(), FuelLevel=40.0, LapCompleted=1, Speed=0.0,
                      OnPitRoad=True,
                      PlayerCarInPitStall=True, CarIdxTrackSurface=_surface(1))
    bob.in_car = True
    bob.tick()
    bob.tick(Speed=5.0, PlayerCarInPitStall=False, CarIdxTrackSurface=_surface(2))
    bob.tick(OnPitRoad=False, Speed=30.0, CarIdxTrackSurface=_surface(3))
    bob.lap(2, 120.0, fuel=38.0)
    codes = [r.code for r in ann.out + bob.out if isinstance(r, Event)]
    assert codes.count("pit_exit") == 1 and "driver_change" in codes
    (lap2,) = laps(bob.out)
    assert lap2.stint == 2 and lap2.lap_in_stint == 1 and lap2.detail["driver"] == "Bob Baker"
    assert lap2.fuel_used is None, "fuel went in during this lap: no consumption, never negative"
    assert lap2.detail["fuel_added_l"] == 13.0
    stamps = [lap2.detail[k] for k in ("pit_entry_s", "pit_stop_s", "pit_go_s", "pit_exit_s")]
    assert stamps == sorted(stamps)
    state = [r for r in ann.out + bob.out if isinstance(r, StintState)][-1]
    assert state.stint == 2 and state.pit_exit_s is not None
    assert state.detail["driver"] == "Bob Baker" and state.detail["subsession_id"] == 9001
    assert state.detail["last_lap_time_s"] == 120.0 and state.detail["fuel_l"] == 38.0


def test_a_session_change_is_a_new_collection_with_counters_reset():
    box = IRacingBox()
    ann = Pc(box, "ann-pc", in_car=True, my_user_id=111, driver_user_id=111)
    ann.lap(1, 91.0, fuel=27.0)
    ann.tick(OnPitRoad=True, CarIdxTrackSurface=_surface(2))
    ann.tick(OnPitRoad=False, CarIdxTrackSurface=_surface(3))  # a drive-through: stint 2
    ann.tick(SessionNum=1, SessionTime=5.0, LapCompleted=0, CarIdxLapCompleted=[0] * 64)
    ann.lap(1, 95.0, fuel=25.0)
    sessions = [r for r in ann.out if isinstance(r, Session)]
    assert [s.session_id for s in sessions] == ["Pit  Crew@7001#9001#0", "Pit  Crew@7001#9001#1"]
    assert sessions[1].session_type == "Race" and sessions[1].total_laps == 20
    new = [lap for lap in laps(ann.out) if lap.session_id.endswith("#1")]
    assert [(lap.lap_no, lap.stint, lap.lap_in_stint) for lap in new] == [(1, 1, 1)]


def test_a_bad_info_body_is_a_malformed_packet_not_a_crash():
    box = IRacingBox()
    with pytest.raises(MalformedPacket) as exc:
        box.on_frame("x", "info", {"WeekendInfo": {}}, now_s=0, ts_ns=0, mono_ns=0)
    assert exc.value.reason == "bad_session_info"
    with pytest.raises(MalformedPacket):
        box.on_frame("x", "tel", {"vars": [1, 2]}, now_s=0, ts_ns=0, mono_ns=0)
    assert box.on_frame("y", "tel", {"vars": {"SessionNum": 0}}, now_s=0, ts_ns=0,
                        mono_ns=0) == []
    assert box.stats["awaiting_info"] == 1


def _surface(value: int) -> list[int]:
    arr = [-1] * 64
    arr[CAR] = value
    return arr


def test_a_drivers_pc_replaying_its_buffer_after_a_drop_neither_duplicates_nor_resets():
    box = IRacingBox(stale_s=1.0)
    ann = Pc(box, "ann-pc", in_car=True, my_user_id=111, driver_user_id=111)
    bob = Pc(box, "bob-pc", in_car=False, my_user_id=222, driver_user_id=111)
    ann.lap(1, 91.0, fuel=27.0)
    bob.lap(1, 91.0, fuel=0.0)
    ann.drop()  # Ann's PC loses the box; both PCs still see the same sim
    for n in (2, 3):
        for pc in (ann, bob):
            pc.tick(dt=2.0)
            pc.lap(n, 90.0 + n, fuel=30.0 - 3 * n)
    assert [lap.lap_no for lap in laps(bob.out)] == [2, 3], "the teammate fills the gap"
    ann.reconnect(now_s=bob.t())  # laps 1 → 3 again, from frames older than the box used
    for n in (4, 5):
        for pc in (ann, bob):
            pc.lap(n, 90.0 + n, fuel=30.0 - 3 * n)
    got = sorted(laps(ann.out + bob.out), key=lambda lap: lap.lap_no)
    assert [(lap.lap_no, lap.stint, lap.lap_in_stint) for lap in got] == [
        (1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 1, 4), (5, 1, 5)]
    assert [lap.detail["source"] for lap in got] == [
        "ann-pc", "bob-pc", "bob-pc", "ann-pc", "ann-pc"], "the driver's PC writes once caught up"
    assert got[4].fuel_used == 3.0
    codes = [r.code for r in ann.out + bob.out if isinstance(r, Event)]
    assert "reset" not in codes, codes
    assert box.stats["behind"] > 0


def test_a_sim_clock_that_restarts_under_the_same_key_is_not_taken_for_a_replay():
    box = IRacingBox()
    ann = Pc(box, "ann-pc", in_car=True, session_id=0, team_id=0)  # solo: key without ids
    ann.lap(1, 91.0, fuel=27.0)
    ann.lap(2, 92.0, fuel=24.0)
    ann.tick(SessionTime=3.0, LapCompleted=-1, FuelLevel=40.0)  # a new practice, same key
    ann.tick(LapCompleted=0)
    ann.lap(1, 95.0, fuel=37.0)
    assert [(lap.lap_no, lap.lap_time_ms) for lap in laps(ann.out)] == [
        (1, 91000), (2, 92000), (1, 95000)]


def test_a_lap_waiting_for_its_time_at_a_session_change_is_closed_without_one():
    box = IRacingBox()
    ann = Pc(box, "ann-pc", in_car=True, my_user_id=111, driver_user_id=111)
    ann.lap(1, 91.0, fuel=27.0)
    ann.tick(LapCompleted=2, FuelLevel=24.0)  # over the line; the session ends before the time
    ann.tick(SessionNum=1, SessionTime=5.0, LapCompleted=0, LapLastLapTime=0.0)
    old = [lap for lap in laps(ann.out) if lap.session_id.endswith("#0")]
    assert [(lap.lap_no, lap.lap_time_ms, lap.lap_in_stint, lap.fuel_used) for lap in old] == [
        (1, 91000, 1, 3.0), (2, 0, 2, 3.0)]
    assert not [lap for lap in laps(ann.out) if lap.session_id.endswith("#1")]
