"""The shim's window on the sim: pyirsdk, behind our own header checks.

Live (Windows) pyirsdk maps iRacing's shared memory; `--simulate FILE` maps a dump file
instead (pyirsdk's test-file mode, which re-reads a file rewritten in place, so a scripted
sim works on any OS). Either way the header is checked by `gateway.decode.irsdk.header`
before pyirsdk reads a variable: pyirsdk has no bounds checks of its own.

`poll()` returns the Teamtactics variable set (floats rounded to what matters, so noise is
not a change) and, when `sessionInfoUpdate` moved, the trimmed session info.
"""

from __future__ import annotations

import logging
import mmap
import sys
from pathlib import Path
from typing import Any

from gateway.decode.irsdk import header
from gateway.decode.irsdk.variables import CAR_ARRAYS, VARS

log = logging.getLogger("pitbox.shim")

DIGITS = {"SessionTime": 3, "SessionTimeOfDay": 0, "Speed": 1, "FuelLevel": 2,
          "FuelUsePerHour": 2, "TrackTemp": 1, "PlayerCarTowTime": 0, "PitRepairLeft": 0,
          "PitOptRepairLeft": 0}
TRIM = {
    "WeekendInfo": ("TrackName", "TrackDisplayName", "SessionID", "SubSessionID", "TeamRacing"),
    "DriverInfo": ("DriverCarIdx", "DriverUserID", "DriverCarFuelMaxLtr", "DriverCarMaxFuelPct",
                   "DriverCarFuelKgPerLtr"),
    "Drivers": ("CarIdx", "UserName", "UserID", "TeamID", "TeamName", "CarPath", "CarIsPaceCar"),
    "Sessions": ("SessionNum", "SessionType", "SessionLaps", "SessionTime"),
}
"""The session-info fields the box uses, per section."""
LIVE_MAP_BYTES = 1164 * 1024  # pyirsdk's MEMMAPFILESIZE
LIVE_MAP_NAME = "Local\\IRSDKMemMapFileName"


def _quantize(name: str, value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DIGITS.get(name, 3))
    if isinstance(value, list):
        return [round(v, 3) if isinstance(v, float) else v for v in value]
    return value


def trim(weekend: Any, session: Any, driver: Any) -> dict[str, Any]:
    """The session-info subset the box needs, from the three YAML sections."""
    def pick(d: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        return {k: d.get(k) for k in keys} if isinstance(d, dict) else {}
    drivers = driver.get("Drivers") if isinstance(driver, dict) else None
    sessions = session.get("Sessions") if isinstance(session, dict) else None
    return {"WeekendInfo": pick(weekend, TRIM["WeekendInfo"]),
            "DriverInfo": {**pick(driver, TRIM["DriverInfo"]),
                           "Drivers": [pick(d, TRIM["Drivers"]) for d in drivers or []]},
            "SessionInfo": {"Sessions": [pick(s, TRIM["Sessions"]) for s in sessions or []]}}


class IrsdkReader:
    """`connect()` until it returns True, then `poll()` at the shim's rate."""

    def __init__(self, simulate: str = "") -> None:
        self.simulate = simulate
        self._ir: Any = None
        self._names: list[str] = []
        self._info_update = -1

    def connect(self) -> bool:
        """Map the sim (or the dump), after our header check. False: not running yet."""
        import irsdk  # the shim's own dependency; the box never needs it for live data

        if self.simulate:
            header.check(Path(self.simulate).read_bytes(), ibt=False)  # raises IrsdkFormatError
        elif sys.platform == "win32":
            try:
                live = mmap.mmap(0, LIVE_MAP_BYTES, LIVE_MAP_NAME, access=mmap.ACCESS_READ)
            except OSError:
                return False
            try:
                header.check(live, ibt=False)
            finally:
                live.close()
        ir = irsdk.IRSDK()
        if not ir.startup(test_file=self.simulate or None):
            return False
        self._ir = ir
        present = set(ir.var_headers_names or ())
        self._names = [n for n in (*VARS, *CAR_ARRAYS) if n in present]
        self._info_update = -1
        log.info("shim: connected to %s (%d of our variables present)",
                 self.simulate or "iRacing", len(self._names))
        return True

    @property
    def connected(self) -> bool:
        return self._ir is not None and bool(self._ir.is_connected)

    def poll(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(variables, session info if it changed since the last poll, else None)."""
        ir = self._ir
        if not self.simulate:
            ir.freeze_var_buffer_latest()  # live: copy the newest row after the data-valid event
        values = {n: _quantize(n, ir[n]) for n in self._names}
        info = None
        if ir.session_info_update != self._info_update:
            self._info_update = ir.session_info_update
            info = trim(ir["WeekendInfo"], ir["SessionInfo"], ir["DriverInfo"])
        return values, info

    def close(self) -> None:
        if self._ir is not None:
            self._ir.shutdown()
            self._ir = None
