"""iRacing shim uplink volume: "only what changed, edges at once, continuous values at
send_hz" vs sending every variable on every 60 Hz poll. Both sealed exactly as the shim does
(length + HMAC + msgpack). Also: frames/s the box's merge (IRacingBox) takes from one core,
against a venue's need (20 PCs × 10 frames/s). Bounded: a fixed 10-minute scripted stint.

    .venv/bin/python bench/iracing_shim.py [--minutes M]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.decode.irsdk.frames import seal
from gateway.normalize.iracing_box import IRacingBox
from gateway.shim.delta import DeltaTracker
from gateway.shim.reader import _quantize, trim

KEY = b"bench-pairing-key-000"
HZ = 60
INFO = trim({"TrackName": "spa", "SessionID": 1, "SubSessionID": 2, "TeamRacing": 1},
            {"Sessions": [{"SessionNum": 0, "SessionType": "Race", "SessionLaps": "unlimited",
                           "SessionTime": "3600.0000 sec"}]},
            {"DriverCarIdx": 3, "DriverUserID": 1, "Drivers": [
                {"CarIdx": 3, "UserName": "A", "UserID": 1, "TeamID": 9, "TeamName": "T",
                 "CarPath": "car"}]})


def polls(minutes: float) -> list[dict[str, Any]]:
    """A scripted stint: 90 s laps, fuel burning, 20 cars' arrays moving at each line."""
    out = []
    lap_s = 90.0
    for i in range(int(minutes * 60 * HZ)):
        t = i / HZ
        lap = int(t // lap_s)
        car_laps = [lap + (c % 3 == 0) for c in range(64)]
        values = {
            "SessionTime": t, "SessionTimeOfDay": 50_000 + t, "SessionNum": 0, "SessionState": 4,
            "LapCompleted": lap, "LapLastLapTime": 90.0 + (lap % 7) * 0.1 if lap else 0.0,
            "FuelLevel": 60 - t * 0.03, "FuelUsePerHour": 24 + math.sin(t), "OnPitRoad": False,
            "PlayerCarInPitStall": False, "PlayerTrackSurface": 3,
            "Speed": 50 + 20 * math.sin(t / 5), "TrackTemp": 30 + t / 3600, "PitSvFlags": 0,
            "PitSvFuel": 0.0, "PlayerCarTowTime": 0.0, "PitRepairLeft": 0.0,
            "PitOptRepairLeft": 0.0, "PlayerCarPosition": 3, "CarIdxLapCompleted": car_laps,
            "CarIdxTrackSurface": [3] * 64, "CarIdxOnPitRoad": [False] * 64,
            "CarIdxLastLapTime": [90.0 + (n % 5) * 0.2 for n in car_laps],
            "CarIdxPosition": list(range(64))}
        out.append({k: _quantize(k, v) for k, v in values.items()})
    return out


def volume(rows: list[dict[str, Any]], *, send_hz: float | None) -> tuple[int, list[dict]]:
    delta = DeltaTracker(send_hz or 0)
    frames, sent = 0, []
    size = len(seal(KEY, "pc", 1, frames, "info", INFO))
    for i, values in enumerate(rows):
        diff = values if send_hz is None else delta.changes(values, i / HZ)
        if diff:
            frames += 1
            data = {"vars": diff, "full": send_hz is None}
            sent.append(data)
            size += len(seal(KEY, "pc", 1, frames, "tel", data))
    return size, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    rows = polls(args.minutes)
    secs = args.minutes * 60
    full, _ = volume(rows, send_hz=None)
    ours, frames = volume(rows, send_hz=10)
    print(f"every variable every poll: {full / secs / 1024:8.1f} KiB/s per PC")
    print(f"changes, 10 Hz + edges:    {ours / secs / 1024:8.1f} KiB/s per PC "
          f"({len(frames) / secs:.1f} frames/s)")
    box = IRacingBox()
    box.on_frame("pc", "info", INFO, now_s=0, ts_ns=0, mono_ns=0)
    start = time.perf_counter()
    for i, data in enumerate(frames):
        box.on_frame("pc", "tel", data, now_s=i / 10, ts_ns=i, mono_ns=i)
    took = time.perf_counter() - start
    need = 20 * 10  # a venue: 20 PCs at ~10 frames/s each
    print(f"box merge: {len(frames) / took:,.0f} frames/s on one core, "
          f"{len(frames) / took / need:.0f}x a 20-PC venue's {need} frames/s")
    print(f"iracing_shim: {full / ours:.1f}x less uplink than every variable every poll "
          f"(goal >= 10x)")


if __name__ == "__main__":
    main()
