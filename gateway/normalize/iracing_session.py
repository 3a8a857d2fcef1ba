"""What the box needs from iRacing's session info, and the Teamtactics collection key. Pure.

The input is the session-info YAML as dicts (pyirsdk's `ir['WeekendInfo']` shape; the shim
sends the sections it trims, the `.ibt` ingest parses them from the file). The key:

- team event: `{TeamName}@{SessionID}#{SubSessionID}#{SessionNum}`
- single driver (`SessionID == 0` or `TeamID == 0`): `{UserName}@{CarPath}#{TrackName}#{SessionNum}`

Names keep their spaces verbatim; `/` (not allowed in a collection name) becomes `_`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.errors import MalformedPacket

_SECONDS = re.compile(r"^\s*([0-9.]+)\s*sec")


@dataclass(frozen=True, slots=True)
class SessionFacts:
    track: str
    session_id: int
    subsession_id: int
    team_racing: bool
    car_idx: int  # DriverCarIdx: the team's car
    my_user_id: int  # DriverInfo.DriverUserID: whose PC this is
    driver_user_id: int  # Drivers[DriverCarIdx].UserID: who sits in the car
    driver_name: str
    team_id: int
    team_name: str
    car_path: str
    drivers: tuple[str, ...]  # the team's members (the car's entries)
    fuel_max_l: float
    sessions: tuple[tuple[int, str, int, int], ...]  # (num, type, laps (0 = unlimited), time s)

    @property
    def in_car(self) -> bool:
        """This PC's user drives the car: the client that may write lap and fuel data."""
        return self.my_user_id == self.driver_user_id and self.my_user_id != 0

    @property
    def solo(self) -> bool:
        return self.session_id == 0 or self.team_id == 0

    def session(self, num: int) -> tuple[str, int, int]:
        """(type, laps, time s) of session `num`; unknown: ("", 0, 0)."""
        for n, kind, laps, secs in self.sessions:
            if n == num:
                return kind, laps, secs
        return "", 0, 0


def session_key(facts: SessionFacts, session_num: int) -> str:
    if facts.solo:
        key = f"{facts.driver_name}@{facts.car_path}#{facts.track}#{session_num}"
    else:
        key = f"{facts.team_name}@{facts.session_id}#{facts.subsession_id}#{session_num}"
    return key.replace("/", "_")


def facts_from(info: dict[str, Any]) -> SessionFacts:
    """Raises `MalformedPacket("bad_session_info")` when a needed field is missing."""
    try:
        weekend, drv = info["WeekendInfo"], info["DriverInfo"]
        car_idx = int(drv["DriverCarIdx"])
        entries = [d for d in drv["Drivers"] if isinstance(d, dict)]
        car = next(d for d in entries if int(d["CarIdx"]) == car_idx)
        team_id = int(car.get("TeamID") or 0)
        mates = tuple(str(d.get("UserName", "")) for d in entries
                      if int(d["CarIdx"]) == car_idx)
        sessions = tuple(_session(s) for s in (info.get("SessionInfo") or {}).get("Sessions") or [])
        return SessionFacts(
            track=str(weekend["TrackName"]), session_id=int(weekend.get("SessionID") or 0),
            subsession_id=int(weekend.get("SubSessionID") or 0),
            team_racing=bool(int(weekend.get("TeamRacing") or 0)), car_idx=car_idx,
            my_user_id=int(drv.get("DriverUserID") or 0),
            driver_user_id=int(car.get("UserID") or 0), driver_name=str(car.get("UserName", "")),
            team_id=team_id, team_name=str(car.get("TeamName") or car.get("UserName", "")),
            car_path=str(car.get("CarPath", "")), drivers=mates,
            fuel_max_l=round(float(drv.get("DriverCarFuelMaxLtr") or 0)
                             * float(drv.get("DriverCarMaxFuelPct") or 1), 3),
            sessions=sessions)
    except (KeyError, TypeError, ValueError, StopIteration) as exc:
        raise MalformedPacket("bad_session_info", repr(exc)) from exc


def _session(s: dict[str, Any]) -> tuple[int, str, int, int]:
    laps: Any = s.get("SessionLaps")
    secs = _SECONDS.match(str(s.get("SessionTime", "")))
    return (int(s["SessionNum"]), str(s.get("SessionType") or ""),
            int(laps) if isinstance(laps, int) or str(laps).isdigit() else 0,
            round(float(secs.group(1))) if secs else 0)
