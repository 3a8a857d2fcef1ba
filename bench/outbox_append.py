"""Durable outbox append: group commit (what the gateway does) vs one commit per row.

Both go through `Outbox` on the same file system with WAL and synchronous=FULL; the only
difference is how many rows share an fsync. Prints rows/s of each and the ratio (issue 5's
goal: >= 100x). Bounded: a fixed row count per side, and the per-row side capped at 20 s.

    .venv/bin/python bench/outbox_append.py [--rows N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.outbox import Outbox
from gateway.records import Sample

WINDOW_S = 0.050  # the gateway's default commit window


def sample(i: int) -> Sample:
    return Sample(rig=f"rig-{i % 20}", session_id="bench", ts_ns=i, mono_ns=i, car_idx=0,
                  lap_no=1 + i // 1000, lap_distance_m=float(i % 5000), speed_kph=250, gear=7,
                  rpm=11000, throttle=1.0, brake=0.0, fuel_level=50.0, tyre_compound="soft")


def per_row(path: Path, rows: int, cap_s: float) -> tuple[int, float]:
    box = Outbox(path)
    t0 = time.perf_counter()
    n = 0
    while n < rows and time.perf_counter() - t0 < cap_s:
        box.append([sample(n)])
        box.flush()
        n += 1
    elapsed = time.perf_counter() - t0
    box.close()
    return n, elapsed


def grouped(path: Path, rows: int, rate_hz: float) -> tuple[int, float]:
    """Rows arrive at `rate_hz` (paced in batches, like UDP), committed every WINDOW_S."""
    box = Outbox(path)
    records = [sample(i) for i in range(rows)]
    per_window = max(1, int(rate_hz * WINDOW_S))
    t0 = time.perf_counter()
    for start in range(0, rows, per_window):
        box.append(records[start:start + per_window])
        box.flush()
    elapsed = time.perf_counter() - t0
    box.close()
    return rows, elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000, help="rows per side (default 20000)")
    ap.add_argument("--rate", type=float, default=20 * 60 * 10,
                    help="arrival rate rows/s for the grouped side (default: 20 rigs x 60 Hz x 10)")
    ap.add_argument("--dir", help="directory on the file system to measure (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        n1, t1 = per_row(Path(tmp) / "per_row.sqlite", min(args.rows, 5000), cap_s=20)
        n2, t2 = grouped(Path(tmp) / "grouped.sqlite", args.rows, args.rate)
    base, group = n1 / t1, n2 / t2
    print(f"outbox append, WAL + synchronous=FULL, dir={args.dir or tempfile.gettempdir()}")
    print(f"  per-row commit : {n1:>7} rows in {t1:6.2f} s = {base:>10,.0f} rows/s")
    print(f"  group commit   : {n2:>7} rows in {t2:6.2f} s = {group:>10,.0f} rows/s "
          f"({max(1, int(args.rate * WINDOW_S))} rows per {WINDOW_S * 1000:.0f} ms window)")
    print(f"  ratio          : {group / base:,.0f}x (goal >= 100x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
