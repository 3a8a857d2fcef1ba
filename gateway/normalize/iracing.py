"""One iRacing team car in one session → pitbox records. Pure: no sockets, files or clock.

`observe()` turns a PC's telemetry variables (merged from the shim's frames, or one `.ibt`
row) into the car's `Observation`. What a PC can see depends on who drives: the in-car
client reads the player variables (`LapCompleted`, `FuelLevel`, `OnPitRoad`, `Speed`); a
teammate's PC reads 0 there, so its view comes from the `CarIdx*` arrays at the team's car
index and has no fuel. `IRacingNormalizer` runs the stint machine (iracing_stint.py) on those
observations and emits `Session`, `Lap`, `Event` and `StintState` records under the session's
Teamtactics key. Lap fuel is in litres (`fuel_unit = "l"`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gateway.normalize.iracing_session import SessionFacts
from gateway.normalize.iracing_stint import ClosedLap, IRacingStint, IrEvent, Observation
from gateway.records import Event, Lap, Record, Session, StintState

GAME = "iracing"


def _num(v: Any, default: float = 0.0) -> float:
    return float(v) if isinstance(v, (int, float)) else default


def _at(values: dict[str, Any], name: str, idx: int) -> Any:
    arr = values.get(name)
    return arr[idx] if isinstance(arr, list) and 0 <= idx < len(arr) else None


def observe(values: dict[str, Any], facts: SessionFacts, *, in_car: bool) -> Observation:
    """The car's observation from one PC's variables (missing ones read as unknown)."""
    idx = facts.car_idx
    surface = _at(values, "CarIdxTrackSurface", idx)
    if not isinstance(surface, int):
        surface = int(_num(values.get("PlayerTrackSurface"), 3))
    lap_time = _num(values.get("LapLastLapTime"))
    if lap_time <= 0:
        lap_time = _num(_at(values, "CarIdxLastLapTime", idx))
    if in_car or "CarIdxLapCompleted" not in values:
        laps = int(_num(values.get("LapCompleted"), -1))
        pit_road = bool(values.get("OnPitRoad"))
    else:
        laps = int(_num(_at(values, "CarIdxLapCompleted", idx), -1))
        pit_road = bool(_at(values, "CarIdxOnPitRoad", idx))
    position = _at(values, "CarIdxPosition", idx)
    fuel = values.get("FuelLevel") if in_car else None
    speed = values.get("Speed") if in_car else None
    return Observation(
        session_time_s=_num(values.get("SessionTime")),
        time_of_day_s=_num(values.get("SessionTimeOfDay")), lap_completed=laps,
        last_lap_time_s=lap_time, surface=surface, on_pit_road=pit_road,
        in_stall=bool(values.get("PlayerCarInPitStall")) if in_car else surface == 1,
        speed_mps=float(speed) if isinstance(speed, (int, float)) else None,
        fuel_level_l=float(fuel) if isinstance(fuel, (int, float)) else None,
        pit_sv_flags=int(_num(values.get("PitSvFlags"))),
        pit_sv_fuel_l=_num(values.get("PitSvFuel")),
        tow_time_s=_num(values.get("PlayerCarTowTime")),
        repair_left_s=_num(values.get("PitRepairLeft")),
        opt_repair_left_s=_num(values.get("PitOptRepairLeft")),
        track_temp_c=round(float(values["TrackTemp"]), 2)
        if isinstance(values.get("TrackTemp"), (int, float)) else None,
        position=int(position) if isinstance(position, int) else int(
            _num(values.get("PlayerCarPosition"))),
        driver=facts.driver_name)


class IRacingNormalizer:
    """The team car of one session (one Teamtactics collection, `session_id`)."""

    def __init__(self, session_id: str, facts: SessionFacts, session_num: int, *,
                 rig: str, historical: bool = False) -> None:
        self.session_id = session_id
        self.rig = rig
        self.historical = historical
        self.facts = facts
        self.session_num = session_num
        self.machine = IRacingStint()
        self.stats: Counter[str] = Counter()
        self._state_seen: tuple[Any, ...] | None = None
        self._started = False
        self.source = ""
        self._last_lap: ClosedLap | None = None

    def feed(self, obs: Observation, *, source: str, now_s: float, ts_ns: int,
             mono_ns: int) -> list[Record]:
        """Records from one observation; `source` (the shim whose view it is) goes in lap docs.

        Every record of the car carries the normalizer's one `rig`, whichever PC it came
        from, so the uplink batches them in order and a newer `state` always lands last.
        """
        self.source = source
        base: dict[str, Any] = {"rig": self.rig, "session_id": self.session_id,
                                "ts_ns": ts_ns, "mono_ns": mono_ns}
        out: list[Record] = []
        if not self._started:
            self._started = True
            out.append(self._session(base))
            out.append(Event(**base, car_idx=self.facts.car_idx, code="session_start",
                             game_code="", lap_no=max(0, obs.lap_completed) + 1,
                             session_time_s=round(obs.session_time_s, 3),
                             detail={"time_of_day_s": obs.time_of_day_s,
                                     "session_num": self.session_num}))
        for item in self.machine.update(obs, now_s):
            if isinstance(item, IrEvent):
                out.append(Event(**base, car_idx=self.facts.car_idx, code=item.code,
                                 game_code="", lap_no=item.lap_no,
                                 session_time_s=item.session_time_s, detail=item.detail))
            else:
                self._last_lap = item
                out.append(self._lap(base, item))
        state = self._state(base)
        if state is not None:
            out.append(state)
        return out

    def flush(self, *, ts_ns: int, mono_ns: int) -> list[Record]:
        """Laps still waiting for their time, closed without one: the session or file ended."""
        base: dict[str, Any] = {"rig": self.rig, "session_id": self.session_id,
                                "ts_ns": ts_ns, "mono_ns": mono_ns}
        out: list[Record] = []
        for lap in self.machine.flush():
            self._last_lap = lap
            out.append(self._lap(base, lap))
        state = self._state(base) if out else None
        return out + ([state] if state is not None else [])

    def _session(self, base: dict[str, Any]) -> Session:
        kind, laps, secs = self.facts.session(self.session_num)
        return Session(**base, game=GAME, track=self.facts.track, car=self.facts.car_path,
                       session_type=kind, team=self.facts.team_name,
                       drivers=self.facts.drivers, total_laps=laps, time_left_s=secs,
                       historical=self.historical)

    def _lap(self, base: dict[str, Any], lap: ClosedLap) -> Lap:
        if not lap.lap_time_s:
            self.stats["lap_without_time"] += 1
        return Lap(**base, car_idx=self.facts.car_idx, lap_no=lap.lap_no,
                   lap_time_ms=round(lap.lap_time_s * 1000), sector_ms=(), valid=True,
                   position=lap.position, fuel_level=lap.fuel_level_l, fuel_used=lap.fuel_used_l,
                   fuel_unit="l", tyre_compound="", tyre_age_laps=0, pit_in=lap.pit_in,
                   pit_out=lap.pit_out, stint=lap.stint, lap_in_stint=lap.lap_in_stint,
                   own_car=True, detail={**lap.detail, "source": self.source})

    def _state(self, base: dict[str, Any]) -> StintState | None:
        m = self.machine
        v = m.visit if m.phase == "lane" else m.last_visit
        last = self._last_lap
        f = self.facts
        detail = {"driver": f.driver_name, "tow_time_s": m.tow_time_s, "repair_s": v.repair_s,
                  "opt_repair_s": v.opt_repair_s, "session_id": f.session_id,
                  "subsession_id": f.subsession_id, "session_num": self.session_num,
                  "last_lap_time_s": last.lap_time_s if last else None,
                  "fuel_l": last.fuel_level_l if last else None}
        key = (m.stint, m.stint_laps, m.in_pit, v.entry_s, v.exit_s, v.stop_s, v.go_s,
               tuple(detail.values()))
        if key == self._state_seen:
            return None
        self._state_seen = key
        return StintState(**base, car_idx=self.facts.car_idx, stint=m.stint,
                          stint_laps=m.stint_laps, in_pit=m.in_pit, pit_entry_s=v.entry_s,
                          pit_exit_s=v.exit_s, pit_stop_s=v.stop_s, pit_go_s=v.go_s,
                          own_car=True, detail=detail)
