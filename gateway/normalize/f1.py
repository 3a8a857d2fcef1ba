"""EA F1 packets → pitbox records, one `F1Normalizer` per rig. Pure: no sockets, files or clock.

Times come in with each packet (`ts_ns`, `mono_ns`: the capture's receive time); the game's
own clock is the header's `session_time_s`, which rewinds on a flashback.

- **Session.** A session is (rig, session_uid). Its key — the `session_id` of every record —
  is the Teamtactics collection key `{rig}@f1-{format}#{track}#{uid:016x}`; the track needs a
  Session packet, so packets of a session before its first Session packet produce nothing
  (counted as `awaiting_session`), and neither do menus (uid 0). The key is fixed once built.
- **Samples** of the player car(s), joined from the latest Lap Data, Car Telemetry and Car
  Status (tyre wear from the latest Car Damage), at most `sample_hz` per car of session time,
  driven by Car Telemetry packets.
- **Laps** of every active car from Lap Data: a lap closes when the lap number goes up by one,
  or when the car takes the flag (the game then keeps the lap number and sets result 3).
- **Pit events and stint state** from the per-car `StintMachine` (see stint.py).
- **Events** from Event packets: every code of every format, named by f1_events.EVENT_NAMES,
  EA's code kept as `game_code` (f1_events.MERGED_EVENT_CODES says which are merged). Events
  that come before the session's first Session packet are held (at most MAX_EARLY_EVENTS)
  and go out with the session's key once it is known — or, if the session ends without one
  (skipped career sessions send only events), under the key of an "unknown" track.
- **Flashbacks.** On the game's FLBK event, or when the header's frame id goes back while the
  overall frame id goes on (the FLBK event was lost), every car's lap, pit and stint state is
  restored to the flashback's session time from a bounded history (see f1_cars.py), and a
  `flashback` event carries the rewound span: `from_frame_id` / `from_session_time_s` back
  to `flashback_frame_id` / `flashback_session_time_s`. Records of the rewound span were sent
  already; those after the flashback replace them (a lap closes again, with its new time).

Restricted telemetry: other players' Car Status carries zero fuel when not shared; a zero
tank *and* zero capacity is "unknown" (None), never an empty tank.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from gateway.decode.f1 import F1Packet
from gateway.decode.f1.header import Header
from gateway.decode.f1.packet_01_session import TRACK_NAMES, SessionData, session_type_name
from gateway.decode.f1.packet_02_lap_data import LapData, LapDataPacket
from gateway.decode.f1.packet_03_event import EventPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import VISUAL_COMPOUNDS, CarStatus, CarStatusPacket
from gateway.decode.f1.packet_10_car_damage import CarDamagePacket
from gateway.normalize.f1_cars import CarHistory, CarLap, FrameClock, Restore
from gateway.normalize.f1_events import EVENT_NAMES, ButtonLimiter, event_car
from gateway.normalize.stint import PitEvent
from gateway.records import Event, Lap, Record, Sample, Session, StintState

NO_CAR = 255  # EA's "no car" index; also the car_idx of session-wide events
USED_PACKET_IDS = frozenset({1, 2, 3, 6, 7, 10})
"""The packets `feed` reads (session, lap data, event, telemetry, status, damage): the capture
path skips decoding the others' bodies (Motion, Motion Ex, histories …: half the traffic)."""
FRAME_PERIOD_S = 0.05
"""`wants` keeps Lap Data, Car Telemetry and Car Status at most every 50 ms of session time
(20 Hz; games send up to 60): lap numbers, sectors and the invalid flag persist within a lap,
pit visits last seconds and fuel moves grams per frame, so nothing a lap, a stint or a 10 Hz
sample needs is lost, and a rig costs a third of the decoding."""
SAMPLE_EPSILON_S = 1e-3  # slack on the sample period, for float session times
WEATHER = {0: "clear", 1: "light_cloud", 2: "overcast", 3: "light_rain", 4: "heavy_rain",
           5: "storm"}
FORMULAS = {0: "f1_modern", 1: "f1_classic", 2: "f2", 3: "f1_generic", 4: "beta",
            6: "esports", 8: "f1_world", 9: "f1_elimination"}
RESULT_ACTIVE, RESULT_FINISHED = 2, 3  # EA's result_status; 4+ = out (dnf, dsq, retired, …)
JOIN_MID_LAP_MS = 1000  # a car first seen later than this into its lap joined mid-lap
_OLD_UIDS = 8  # recent session uids remembered, so a late packet cannot restart one
MAX_EARLY_EVENTS = 64  # events held while a session has no Session packet yet


def session_key(rig: str, packet_format: int, track: str, session_uid: int) -> str:
    """The Teamtactics-style collection key: `{rig}@f1-{format}#{track}#{uid:016x}`."""
    return f"{rig}@f1-{packet_format}#{track}#{session_uid:016x}"


def compound_name(visual_compound: int) -> str:
    """EA's visual compound as a name ("soft", …), `c{n}` if unknown, "" if not set (0)."""
    if not visual_compound:
        return ""
    return VISUAL_COMPOUNDS.get(visual_compound, f"c{visual_compound}")


def fuel_kg(status: CarStatus | None) -> float | None:
    """Fuel in the tank in kg, or None when unknown (no status yet, or restricted: 0 and 0)."""
    if status is None or (status.fuel_in_tank_kg == 0 and status.fuel_capacity_kg == 0):
        return None
    return round(status.fuel_in_tank_kg, 3)


class F1Normalizer:
    """Turns one rig's decoded F1 packets into records. `sample_hz` ≤ 0 turns samples off."""

    def __init__(self, rig: str, *, sample_hz: float = 10.0, historical: bool = False) -> None:
        self.rig = rig
        self.historical = historical
        self.sample_period_s = 1.0 / sample_hz if sample_hz > 0 else None
        self._frame_period_s = min(FRAME_PERIOD_S, self.sample_period_s or FRAME_PERIOD_S)
        self.stats: Counter[str] = Counter()
        self._old_uids: deque[int] = deque(maxlen=_OLD_UIDS)
        self._uid = 0
        self._reset_session()
        self._stamp = (0, 0)

    def _reset_session(self) -> None:
        self._sid: str | None = None
        self._info: tuple[str, str, int, int] | None = None
        self._ssta_code = ""  # "SSTA" if the game's start event came before the session
        self._ended = False
        self._lap_pkt: LapDataPacket | None = None
        self._tel_pkt: CarTelemetryPacket | None = None
        self._status_pkt: CarStatusPacket | None = None
        self._cars: dict[int, CarLap] = {}
        self._history = CarHistory()
        self._last_sample_s: dict[int, float] = {}
        self._kept_s: dict[int, float] = {}  # packet id → session time of the last one kept
        self._wear: dict[int, tuple[float, ...]] = {}  # from Car Damage, per car
        self._clock = FrameClock()
        self._format = 0
        self._early: list[tuple[int, int, int, str, str, float, dict[str, Any]]] = []
        self._buttons = ButtonLimiter()

    # -- entry point ---------------------------------------------------------------------

    def wants(self, header: Header) -> bool:
        """Whether `feed` needs this packet's body (see FRAME_PERIOD_S). Call it once per
        packet, before decoding the body; packets it turns down are simply not fed."""
        pid = header.packet_id
        if pid not in USED_PACKET_IDS:
            return False
        if pid not in (2, 6, 7) or header.session_uid != self._uid or self._sid is None:
            return True
        t = header.session_time_s
        last = self._kept_s.get(pid)
        if last is not None and last <= t < last + self._frame_period_s - SAMPLE_EPSILON_S:
            return False
        self._kept_s[pid] = t
        return True

    def feed(self, packet: F1Packet, *, ts_ns: int, mono_ns: int) -> list[Record]:
        """The records this packet produced (usually none), in order."""
        header, body = packet.header, packet.body
        if header.session_uid == 0:
            self.stats["menu"] += 1
            return []
        out: list[Record] = []
        if header.session_uid != self._uid:
            if header.session_uid in self._old_uids:
                self.stats["stale_session"] += 1
                return []
            self._new_session(header, out)
        self._stamp = (ts_ns, mono_ns)
        if not (isinstance(body, EventPacket) and body.code == "FLBK"):  # it sets the clock
            seen = self._clock.see(header.frame_id, header.overall_frame_id,
                                   header.session_time_s)
            if seen == FrameClock.STALE:
                self.stats["flashback_stale"] += 1
                return out
            if seen == FrameClock.REWIND:
                self._flashback(header, header.frame_id, header.session_time_s, "", out)
        if isinstance(body, SessionData):
            self._on_session(header, body, out)
        elif isinstance(body, EventPacket):
            self._on_event(header, body, out)
        elif self._sid is None:
            self.stats["awaiting_session"] += 1
        elif isinstance(body, LapDataPacket):
            self._lap_pkt = body
            self._on_lap_data(header, body, out)
        elif isinstance(body, CarTelemetryPacket):
            self._tel_pkt = body
            self._on_telemetry(header, out)
        elif isinstance(body, CarStatusPacket):
            self._status_pkt = body
        elif isinstance(body, CarDamagePacket):
            for idx in self._player_cars(header):  # tyre wear: what samples carry of damage
                if idx < len(body.cars):
                    self._wear[idx] = tuple(round(w, 1) for w in body.cars[idx].tyres_wear_pct)
        return out

    def _new_session(self, header: Header, out: list[Record]) -> None:
        if self._sid is None and self._early:  # it never said its track: held events go out
            out += self._early_events(session_key(self.rig, self._format, "unknown", self._uid))
        if self._uid:
            self._old_uids.append(self._uid)
        self._uid = header.session_uid
        self._reset_session()
        self._format = header.packet_format
        self.stats["sessions"] += 1

    def _base(self) -> dict[str, Any]:
        assert self._sid is not None
        return {"rig": self.rig, "session_id": self._sid, "ts_ns": self._stamp[0],
                "mono_ns": self._stamp[1]}

    # -- session -------------------------------------------------------------------------

    def _on_session(self, header: Header, body: SessionData, out: list[Record]) -> None:
        track = TRACK_NAMES.get(body.track_id, f"track-{body.track_id}")
        session_type = session_type_name(header.packet_format, body.session_type)
        new = self._sid is None
        sid = self._sid = self._sid or session_key(self.rig, header.packet_format, track,
                                                   header.session_uid)
        info = (track, session_type, body.total_laps, body.formula)  # not weather: it changes
        if new:  # held events were captured first: they go first, so seq order is capture order
            out += self._early_events(sid)
        if info != self._info:
            if not new:
                self.stats["session_changed"] += 1
            self._info = info
            out.append(Session(**self._base(), game=f"f1-{header.packet_format}", track=track,
                               car="F1", session_type=session_type, team="",
                               drivers=(self.rig,), total_laps=body.total_laps,
                               time_left_s=body.session_time_left_s,
                               historical=self.historical,
                               weather=WEATHER.get(body.weather, f"weather-{body.weather}"),
                               formula=FORMULAS.get(body.formula, f"formula-{body.formula}"),
                               duration_s=body.session_duration_s,
                               track_temp_c=body.track_temp_c, air_temp_c=body.air_temp_c))
        if new:
            self._emit(out, NO_CAR, "session_start", self._ssta_code, header.session_time_s, {})

    def _emit(self, out: list[Record], car_idx: int, code: str, game_code: str,
              session_time_s: float, detail: dict[str, Any]) -> None:
        """An event, or, before the session has a key, held for when it has one."""
        t = round(session_time_s, 3)
        if self._sid is not None:
            out.append(Event(**self._base(), car_idx=car_idx, code=code, game_code=game_code,
                             lap_no=self._lap_no_of(car_idx), session_time_s=t, detail=detail))
        elif len(self._early) < MAX_EARLY_EVENTS:
            self._early.append((*self._stamp, car_idx, code, game_code, t, detail))
        else:
            self.stats["early_event_dropped"] += 1

    def _early_events(self, sid: str) -> list[Record]:
        out: list[Record] = [
            Event(rig=self.rig, session_id=sid, ts_ns=ts_ns, mono_ns=mono_ns, car_idx=car_idx,
                  code=code, game_code=game_code, lap_no=0, session_time_s=t, detail=detail)
            for ts_ns, mono_ns, car_idx, code, game_code, t, detail in self._early]
        self._early.clear()
        return out

    def _lap_no_of(self, car_idx: int) -> int:
        if self._lap_pkt is not None and 0 <= car_idx < len(self._lap_pkt.cars):
            return self._lap_pkt.cars[car_idx].current_lap_num
        return 0

    # -- events --------------------------------------------------------------------------

    def _on_event(self, header: Header, body: EventPacket, out: list[Record]) -> None:
        code, t = body.code, header.session_time_s
        if code == "SSTA":  # session_start goes out when the session becomes known
            if self._sid is None:
                self._ssta_code = "SSTA"
            else:
                self.stats["session_start_merged"] += 1
            return
        if code == "SEND":
            if self._ended:
                self.stats["session_end_repeated"] += 1
                return
            self._ended = True
        elif code == "FLBK":
            self._flashback(header, int(body.details["flashback_frame_id"]),
                            float(body.details["flashback_session_time_s"]), code, out)
            return
        elif code == "BUTN":
            admitted = self._buttons.admit(t, int(body.details["button_status"]))
            if admitted is None:
                self.stats["event_merged_butn"] += 1
            else:
                self._emit(out, NO_CAR, EVENT_NAMES[code], code, t, admitted)
            return
        detail = {k: round(v, 3) if isinstance(v, float) else v  # float32 noise off
                  for k, v in body.details.items() if k != "vehicle_idx"}
        self._emit(out, event_car(body.details, NO_CAR), EVENT_NAMES.get(code, code.lower()),
                   code, t, detail)

    # -- flashbacks ----------------------------------------------------------------------

    def _flashback(self, header: Header, to_frame: int, to_s: float, game_code: str,
                   out: list[Record]) -> None:
        """Every car back to its state at session time `to_s`, and the `flashback` event."""
        self.stats["flashbacks"] += 1
        to_s = round(to_s, 3)
        detail = {"flashback_frame_id": to_frame, "flashback_session_time_s": to_s,
                  "from_frame_id": self._clock.frame,
                  "from_session_time_s": round(self._clock.time_s, 3),
                  "overall_frame_id": header.overall_frame_id}
        self._emit(out, NO_CAR, "flashback", game_code, header.session_time_s, detail)
        own = self._player_cars(header)
        for idx, car in list(self._cars.items()):
            restored = self._history.restore(idx, to_s)
            if restored is Restore.FORGET:
                del self._cars[idx]
            elif restored is Restore.UNKNOWN:
                self.stats["flashback_beyond_history"] += 1  # lap rewinds still caught
            else:
                restored.stint_seen = car.stint_seen
                self._cars[idx] = restored
                self._stint_state(idx, restored, idx in own, out)  # the cloud's doc goes back
        self._clock.rewound(to_frame, to_s, flbk_frame=header.frame_id if game_code else None,
                            overall=header.overall_frame_id)

    # -- samples -------------------------------------------------------------------------

    def _player_cars(self, header: Header) -> tuple[int, ...]:
        return tuple(i for i in (header.player_car_idx, header.secondary_player_car_idx)
                     if i != NO_CAR)

    def _on_telemetry(self, header: Header, out: list[Record]) -> None:
        if self.sample_period_s is None:
            return
        t = header.session_time_s
        for idx in self._player_cars(header):
            last = self._last_sample_s.get(idx)
            if last is not None and last <= t < last + self.sample_period_s - SAMPLE_EPSILON_S:
                continue  # too soon (a rewind, t < last, falls through: the timer restarts)
            sample = self._sample(idx)
            if sample is None:
                self.stats["sample_incomplete"] += 1
                continue
            self._last_sample_s[idx] = t
            out.append(sample)

    def _sample(self, idx: int) -> Sample | None:
        if self._lap_pkt is None or self._tel_pkt is None or self._status_pkt is None:
            return None
        if not (idx < len(self._lap_pkt.cars) and idx < len(self._tel_pkt.cars)
                and idx < len(self._status_pkt.cars)):
            return None
        lap, tel, status = self._lap_pkt.cars[idx], self._tel_pkt.cars[idx], \
            self._status_pkt.cars[idx]
        fuel = fuel_kg(status)
        return Sample(**self._base(), car_idx=idx, lap_no=lap.current_lap_num,
                      lap_distance_m=round(lap.lap_distance_m, 2), speed_kph=tel.speed_kph,
                      gear=tel.gear, rpm=tel.engine_rpm, throttle=round(tel.throttle, 3),
                      brake=round(tel.brake, 3), fuel_level=fuel,
                      tyre_compound=compound_name(status.visual_tyre_compound),
                      steer=round(tel.steer, 3), position=lap.car_position,
                      fuel_laps=None if fuel is None else round(status.fuel_remaining_laps, 2),
                      tyre_age_laps=status.tyres_age_laps,
                      tyre_temp_c=tuple(tel.tyre_surface_temp_c),
                      tyre_wear_pct=self._wear.get(idx, ()),
                      # Kept small: samples are most of the uplink (issue 3: <= 2 % of raw UDP).
                      detail={"drs": bool(tel.drs), "ers_store_j": round(status.ers_store_energy_j),
                              "ers_mode": status.ers_deploy_mode})

    # -- laps, pit and stint ---------------------------------------------------------------

    def _status_of(self, idx: int) -> CarStatus | None:
        if self._status_pkt is not None and idx < len(self._status_pkt.cars):
            return self._status_pkt.cars[idx]
        return None

    def _speed_of(self, idx: int) -> int | None:
        if self._tel_pkt is not None and idx < len(self._tel_pkt.cars):
            return self._tel_pkt.cars[idx].speed_kph
        return None

    def _on_lap_data(self, header: Header, body: LapDataPacket, out: list[Record]) -> None:
        own = self._player_cars(header)
        t = round(header.session_time_s, 3)  # float32 on the wire: ms is all it holds
        for idx, data in enumerate(body.cars):
            if data.result_status >= RESULT_ACTIVE:
                self._car_lap(idx, data, t, idx in own, out)

    def _car_lap(self, idx: int, data: LapData, t: float, own: bool,
                 out: list[Record]) -> None:
        car = self._cars.get(idx)
        if (car is not None and data.current_lap_num == car.lap_no and not data.pit_status
                and data.result_status == RESULT_ACTIVE and not car.fuel_pending
                and not car.machine.in_pit):
            # Nothing but the lap in progress moved (most cars, most frames): a quick path,
            # as this runs for every car 60 times a second on every rig.
            car.s1_ms = data.sector1_ms or car.s1_ms
            car.s2_ms = data.sector2_ms or car.s2_ms
            car.invalid = car.invalid or data.current_lap_invalid
            return
        changed = car is None  # worth a point in the flashback history
        if car is None:
            car = self._cars[idx] = self._first_seen(idx, data)
        elif car.done:
            return
        elif data.current_lap_num != car.lap_no and data.current_lap_num != car.lap_no + 1:
            self.stats["lap_rewound" if data.current_lap_num < car.lap_no else "lap_skipped"] += 1
            car.lap_no, car.last_lap_ms = data.current_lap_num, data.last_lap_time_ms
            car.fuel_start, car.fuel_pending = None, False  # a partial lap: fuel use unknown
            car.s1_ms = car.s2_ms = 0
            car.invalid = car.pit_in = False
            car.pit_out = data.pit_status != 0
            changed = True
        closing = data.current_lap_num == car.lap_no + 1
        finishing = (not closing and data.result_status == RESULT_FINISHED
                     and data.last_lap_time_ms != car.last_lap_ms)
        events = car.machine.update(
            session_time_s=t, laps_done=data.current_lap_num - 1 + int(finishing),
            pit_status=data.pit_status, speed_kph=self._speed_of(idx),
            pit_stop_timer_ms=data.pit_stop_timer_ms,
            pit_lane_time_ms=data.pit_lane_time_in_lane_ms)
        self._pit_events(idx, car, events, out)
        if closing or finishing:
            out.append(self._close_lap(idx, car, data, own))
            car.done = data.result_status != RESULT_ACTIVE
            changed = True
        elif data.result_status > RESULT_FINISHED:
            car.done = changed = True  # out of the race: this lap never closes
        else:
            car.s1_ms = data.sector1_ms or car.s1_ms
            car.s2_ms = data.sector2_ms or car.s2_ms
            car.invalid = car.invalid or data.current_lap_invalid
            if car.fuel_pending:  # Car Status follows Lap Data in a frame: take it when it comes
                car.fuel_start = fuel_kg(self._status_of(idx))
                car.fuel_pending = (car.fuel_start is None
                                    and data.current_lap_time_ms <= JOIN_MID_LAP_MS)
                changed = changed or not car.fuel_pending
        if self._stint_state(idx, car, own, out) or changed or events:
            self._history.remember(idx, t, car)

    def _stint_state(self, idx: int, car: CarLap, own: bool, out: list[Record]) -> bool:
        """A StintState record if the car's stint state moved since the last one sent."""
        snapshot = car.machine.snapshot()
        if snapshot == car.stint_seen:
            return False
        car.stint_seen = snapshot
        out.append(StintState(**self._base(), car_idx=idx, stint=snapshot.stint,
                              stint_laps=snapshot.stint_laps, in_pit=snapshot.in_pit,
                              pit_entry_s=snapshot.pit_entry_s, pit_exit_s=snapshot.pit_exit_s,
                              pit_stop_s=snapshot.pit_stop_s, pit_go_s=snapshot.pit_go_s,
                              own_car=own))
        return True

    def _first_seen(self, idx: int, data: LapData) -> CarLap:
        """Start tracking a car; joined mid-lap (> 1 s in), its first lap's fuel use is unknown."""
        fuel = None if data.current_lap_time_ms > JOIN_MID_LAP_MS \
            else fuel_kg(self._status_of(idx))
        return CarLap(lap_no=data.current_lap_num, last_lap_ms=data.last_lap_time_ms,
                      fuel_start=fuel, s1_ms=data.sector1_ms, s2_ms=data.sector2_ms,
                      invalid=data.current_lap_invalid, pit_out=data.pit_status != 0,
                      fuel_pending=fuel is None and data.current_lap_time_ms <= JOIN_MID_LAP_MS)

    def _pit_events(self, idx: int, car: CarLap, events: list[PitEvent],
                    out: list[Record]) -> None:
        for ev in events:
            if ev.code == "pit_entry":
                car.pit_in = True
            elif ev.code == "pit_exit":
                car.pit_out = True
            self._emit(out, idx, ev.code, "", ev.session_time_s, ev.detail)

    def _close_lap(self, idx: int, car: CarLap, data: LapData, own: bool) -> Lap:
        lap_ms = data.last_lap_time_ms
        if not lap_ms:
            self.stats["lap_without_time"] += 1
        s1, s2 = car.s1_ms, car.s2_ms
        sectors = (s1, s2, lap_ms - s1 - s2) if s1 and s2 and lap_ms > s1 + s2 else ()
        status = self._status_of(idx)
        level = fuel_kg(status)
        used = None
        if level is not None and car.fuel_start is not None:
            used = round(car.fuel_start - level, 3) if car.fuel_start >= level else None
        if level is None:
            self.stats["lap_fuel_unknown"] += 1
        lap = Lap(**self._base(), car_idx=idx, lap_no=car.lap_no, lap_time_ms=lap_ms,
                  sector_ms=sectors, valid=not car.invalid, position=data.car_position,
                  fuel_level=level, fuel_used=used, fuel_unit="kg",
                  tyre_compound=compound_name(status.visual_tyre_compound) if status else "",
                  tyre_age_laps=status.tyres_age_laps if status else 0, pit_in=car.pit_in,
                  pit_out=car.pit_out, stint=car.machine.stint,
                  lap_in_stint=car.machine.stint_laps, own_car=own,
                  detail={"penalties_s": data.penalties_s, "warnings": data.total_warnings,
                          "pit_stops": data.num_pit_stops, "grid_position": data.grid_position})
        car.lap_no, car.last_lap_ms, car.fuel_start = data.current_lap_num, lap_ms, level
        car.fuel_pending = False  # a lap that starts with unknown fuel has unknown fuel use
        car.s1_ms, car.s2_ms = data.sector1_ms, data.sector2_ms
        car.invalid, car.pit_in = data.current_lap_invalid, False
        car.pit_out = data.pit_status != 0
        return lap
