"""Small record builders for tests (pure data, no I/O)."""

from __future__ import annotations

from gateway.records import Event, Lap, Sample, Session, StintState

SID = "rig-a@f1-2024#silverstone#00000000000000aa"


def session(rig: str = "rig-a", sid: str = SID) -> Session:
    return Session(rig, sid, 1, 1, "f1-2024", "silverstone", "F1", "race", "", (rig,), 5, 0)


def lap(lap_no: int, *, rig: str = "rig-a", sid: str = SID, own_car: bool = True, car_idx: int = 0) -> Lap:
    return Lap(rig, sid, 1000 + lap_no, 2000 + lap_no, car_idx, lap_no, 90_000 + lap_no,
               (30_000, 30_000, 30_000 + lap_no), True, 1, 50.0 - lap_no, 1.6, "kg", "soft",
               lap_no, False, False, 1, lap_no, own_car)


def sample(i: int, *, rig: str = "rig-a", sid: str = SID) -> Sample:
    return Sample(rig, sid, 10 + i, 20 + i, 0, 1, 100.0 + i, 250, 7, 11000, 1.0, 0.0, 40.0, "soft")


def event(code: str = "pit_entry", *, rig: str = "rig-a", sid: str = SID) -> Event:
    return Event(rig, sid, 5, 6, 0, code, "", 3, 271.5, {"pit_lane_time_ms": 0})


def state(stint: int = 2, *, rig: str = "rig-a", sid: str = SID) -> StintState:
    return StintState(rig, sid, 7, 8, 0, stint, 0, False, 270.0, 295.0, 280.0, 283.0, True)
