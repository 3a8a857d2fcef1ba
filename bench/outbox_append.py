"""Durable outbox append: group commit (what the gateway does) vs one commit per row.

Both go through `Outbox` on the same file system with WAL and synchronous=FULL; the only
difference is how many rows share an fsync. Prints rows/s of each and the ratio (issue 5's
goal: >= 100x). Bounded: a fixed row count per side, and the per-row side capped at 20 s.

    .venv/bin/python bench/outbox_append.py [--rows N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import config
from gateway.outbox import Outbox
from gateway.records import Sample

WINDOW_S = config.load(None).outbox.commit_window_ms / 1000  # the gateway's default


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
    ap.add_argument("--rows", type=int, default=20_000, help="rows per grouped round (default 20000)")
    ap.add_argument("--rate", type=float, default=20 * 60 * 10,
                    help="arrival rate rows/s for the grouped side (default: 20 rigs x 60 Hz x 10)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds; the median ratio is the figure (default 3)")
    ap.add_argument("--dir", help="directory on the file system to measure (default: a temp dir)")
    args = ap.parse_args()
    ratios, per_row_us, group_us = [], [], []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for i in range(args.rounds):  # alternate, so a noisy neighbour hits both sides alike
            n1, t1 = per_row(Path(tmp) / f"per_row{i}.sqlite", min(args.rows, 3000), cap_s=20)
            n2, t2 = grouped(Path(tmp) / f"grouped{i}.sqlite", args.rows, args.rate)
            per_row_us.append(t1 / n1 * 1e6)
            group_us.append(t2 / n2 * 1e6)
            ratios.append(per_row_us[-1] / group_us[-1])
    med = statistics.median
    print(f"outbox append, WAL + synchronous=FULL, dir={args.dir or tempfile.gettempdir()}, "
          f"{args.rounds} rounds")
    print(f"  per-row commit : {med(per_row_us):8.1f} us per row ({1e6 / med(per_row_us):>9,.0f} rows/s)")
    print(f"  group commit   : {med(group_us):8.1f} us per row ({1e6 / med(group_us):>9,.0f} rows/s, "
          f"{max(1, int(args.rate * WINDOW_S))} rows per {WINDOW_S * 1000:.0f} ms window)")
    print(f"  rounds         : {', '.join(f'{r:.0f}x' for r in ratios)}")
    print(f"outbox_append: {med(ratios):.0f}x per-row durable commit (goal >= 100x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
