"""EA F1 event codes → pitbox event names, and the few codes that are merged rather than
passed on one for one. Pure.

Every code of every format (packet_03_event.MEMBERS) becomes an `Event` record named by
EVENT_NAMES, with EA's code kept as `game_code` and the union's fields as `detail`, except
as MERGED_EVENT_CODES says. A test holds both tables to the decoder's codes.
"""

from __future__ import annotations

from typing import Any

EVENT_NAMES: dict[str, str] = {
    "SSTA": "session_start", "SEND": "session_end", "FTLP": "fastest_lap",
    "RTMT": "retirement", "DRSE": "drs_enabled", "DRSD": "drs_disabled",
    "TMPT": "team_mate_in_pits", "CHQF": "chequered_flag", "RCWN": "race_winner",
    "PENA": "penalty", "SPTP": "speed_trap", "STLG": "start_lights", "LGOT": "lights_out",
    "DTSV": "drive_through_served", "SGSV": "stop_go_served", "FLBK": "flashback",
    "BUTN": "buttons", "RDFL": "red_flag", "OVTK": "overtake", "SCAR": "safety_car",
    "COLL": "collision",
}
"""EA event code → pitbox event name, for every code of formats 2023–2026."""

MERGED_EVENT_CODES: dict[str, str] = {
    "SSTA": "merged into the one session_start event, which goes out when the session becomes "
            "known (its first Session packet) with game_code SSTA if the game's start came "
            "first; an SSTA after that is counted (session_start_merged), not repeated",
    "SEND": "the first one is session_end; a repeat in the same session is counted "
            "(session_end_repeated), not repeated",
    "BUTN": "rate-limited per rig (ButtonLimiter): a status equal to the last one passed on, "
            "or one within BUTN_MIN_GAP_S of it, is merged into the next event passed on",
}
"""The codes that do not give exactly one Event per packet, and what happens instead."""

CAR_KEYS = ("vehicle_idx", "vehicle1_idx", "overtaking_vehicle_idx")
"""Detail keys naming the car an event is about, in order of preference (COLL and OVTK name
two cars: the event is filed under the first, the detail keeps both)."""

BUTN_MIN_GAP_S = 0.2
"""At most 5 button events a second per rig. EA sends BUTN on every change of the button
bits; a driver working the wheel's buttons, or a game resending a held button, would
otherwise make button events the bulk of a rig's uplink (a budget of <= 2 % of the raw UDP
for everything, issue 3)."""


def event_car(details: dict[str, Any], no_car: int) -> int:
    """The car an event is about, or `no_car` for a session-wide one."""
    for key in CAR_KEYS:
        if key in details:
            return int(details[key])
    return no_car


class ButtonLimiter:
    """Decides which BUTN events of one rig are passed on (see BUTN_MIN_GAP_S). Session time
    going backwards (a flashback) lets the next one through."""

    def __init__(self, min_gap_s: float = BUTN_MIN_GAP_S) -> None:
        self.min_gap_s = min_gap_s
        self._last_t: float | None = None
        self._last_status: int | None = None
        self._merged = 0
        self._merged_bits = 0

    def admit(self, t: float, status: int) -> dict[str, Any] | None:
        """The detail of the event to emit, or None when this one is merged."""
        recent = self._last_t is not None and self._last_t <= t < self._last_t + self.min_gap_s
        if status == self._last_status or recent:
            self._merged += 1
            self._merged_bits |= status
            return None
        detail: dict[str, Any] = {"button_status": status}
        if self._merged:  # what happened since the last one passed on, so no press is lost
            detail.update(merged=self._merged, merged_status_bits=self._merged_bits)
        self._last_t, self._last_status = t, status
        self._merged = self._merged_bits = 0
        return detail
