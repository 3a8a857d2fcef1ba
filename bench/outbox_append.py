"""Durable outbox append: group commit (what the gateway does) vs one commit per row.

Everything goes through `Outbox` on one file system with WAL and synchronous=FULL; the only
difference is how many records share a commit, so an fsync (and, for a rig's samples, one
stored SQLite row: `gateway/outbox/chunks.py`). Three measurements, alternated over rounds so
a noisy neighbour hits each alike, all in this one run (a "row" below is a record):

- **per-row**: one record, one commit, as fast as the disk allows (the baseline).
- **20-rig load**: what 20 rigs really produce (`bench/outbox_drain.outage`: 10 Hz samples per
  rig, every car's laps, states and pit events; ~205 rows/s), in real time, committed every
  `commit_window_ms` as the gateway does. Few rows share a commit here, so the saving per row
  is small; what matters is that the disk is idle most of the time. Its figure is the commit
  time per row against per-row's.
- **saturation**: rows arrive faster than the disk takes them; each commit takes what arrived
  during one window (and the commit before it). Rows/s against per-row's is the capacity ratio.

The last line is the saturation ratio against per-row commits (issue 5's goal: >= 100x);
the exit status is 1 when the goal is missed. Bounded: each side runs a fixed time.

    .venv/bin/python bench/outbox_append.py [--seconds S] [--rounds N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outbox_drain import outage
from gateway import config
from gateway.outbox import Outbox
from gateway.records import Record

WINDOW_S = config.load(None).outbox.commit_window_ms / 1000  # the gateway's default
RIGS = 20
GOAL = 100.0


class Run(NamedTuple):
    rows: int
    commits: int
    elapsed_s: float  # wall time of the whole run
    commit_s: float  # of which spent inside `flush` (the disk's share)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.elapsed_s

    @property
    def rows_per_commit(self) -> float:
        return self.rows / max(1, self.commits)

    @property
    def commit_us_per_row(self) -> float:
        return self.commit_s / self.rows * 1e6


def records(minutes: float) -> tuple[list[Record], float]:
    """`minutes` of 20 rigs' records in capture order, and their rate (rows/s)."""
    seconds = outage(RIGS, minutes)
    flat = [r for sec in seconds for r in sec]
    return flat, len(flat) / len(seconds)


def cycle(recs: list[Record]) -> Iterator[Record]:
    while True:
        yield from recs


def per_row(path: Path, recs: list[Record], seconds: float) -> Run:
    box = Outbox(path)
    feed = cycle(recs)
    t0 = time.perf_counter()
    n = 0
    commit_s = 0.0
    while time.perf_counter() - t0 < seconds:
        box.append([next(feed)])
        c0 = time.perf_counter()
        box.flush()
        commit_s += time.perf_counter() - c0
        n += 1
    elapsed = time.perf_counter() - t0
    box.close()
    return Run(n, n, elapsed, commit_s)


def real_load(path: Path, recs: list[Record], rate: float, seconds: float) -> Run:
    """Rows arrive at `rate` in real time (as the second's share is due); every WINDOW_S the
    gateway's commit loop flushes what came."""
    box = Outbox(path)
    feed = cycle(recs)
    t0 = time.perf_counter()
    due = n = commits = 0
    commit_s = 0.0
    while (now := time.perf_counter() - t0) < seconds:
        due = int(now * rate)
        box.append([next(feed) for _ in range(due - n)])
        n = due
        c0 = time.perf_counter()
        if box.flush():
            commits += 1
        commit_s += time.perf_counter() - c0
        time.sleep(max(0.0, WINDOW_S - (time.perf_counter() - c0)))
    elapsed = time.perf_counter() - t0
    box.close()
    return Run(n, commits, elapsed, commit_s)


def saturated(path: Path, recs: list[Record], seconds: float) -> Run:
    """Rows come as fast as they can be appended; each window's worth (in wall time, the
    previous commit included, as on the gateway's one loop) goes in one commit."""
    box = Outbox(path)
    feed = cycle(recs)
    t0 = time.perf_counter()
    n = commits = 0
    commit_s = 0.0
    window_end = t0 + WINDOW_S
    while time.perf_counter() - t0 < seconds:
        batch = [next(feed) for _ in range(200)]
        box.append(batch)
        n += len(batch)
        if time.perf_counter() >= window_end:
            c0 = time.perf_counter()
            box.flush()
            commits += 1
            commit_s += time.perf_counter() - c0
            window_end = c0 + WINDOW_S
    c0 = time.perf_counter()
    box.flush()
    commits += 1
    commit_s += time.perf_counter() - c0
    elapsed = time.perf_counter() - t0
    box.close()
    return Run(n, commits, elapsed, commit_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0, help="per side and round (default 4)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds; medians are the figures (default 3)")
    ap.add_argument("--dir", help="directory on the file system to measure (default: a temp dir)")
    args = ap.parse_args()
    recs, rate = records(minutes=3)
    runs: dict[str, list[Run]] = {"per-row": [], "20-rig load": [], "saturation": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for i in range(args.rounds):
            runs["per-row"].append(per_row(Path(tmp) / f"p{i}.sqlite", recs, args.seconds))
            runs["20-rig load"].append(real_load(Path(tmp) / f"r{i}.sqlite", recs, rate,
                                                 args.seconds))
            runs["saturation"].append(saturated(Path(tmp) / f"s{i}.sqlite", recs, args.seconds))
    med = statistics.median
    base_rps = med(r.rows_per_s for r in runs["per-row"])
    base_us = med(r.commit_us_per_row for r in runs["per-row"])
    load, sat = runs["20-rig load"], runs["saturation"]
    load_us = med(r.commit_us_per_row for r in load)
    load_busy = med(r.commit_s / r.elapsed_s for r in load)
    sat_ratios = [s.rows_per_s / p.rows_per_s for s, p in zip(sat, runs["per-row"], strict=True)]
    print(f"outbox append, WAL + synchronous=FULL, dir={args.dir or tempfile.gettempdir()}, "
          f"commit window {WINDOW_S * 1000:.0f} ms, {args.rounds} rounds of {args.seconds:.0f} s")
    print(f"  per-row commit : {base_rps:>9,.0f} rows/s, 1 row per commit, "
          f"{base_us:7.1f} us of commit per row")
    print(f"  20-rig load    : {med(r.rows_per_s for r in load):>9,.0f} rows/s offered "
          f"({rate:.0f} rows/s of {RIGS} rigs), {med(r.rows_per_commit for r in load):.1f} rows "
          f"per commit, {load_us:7.1f} us of commit per row = {base_us / load_us:.1f}x per-row; "
          f"disk busy {load_busy:.0%} of the time")
    print(f"  saturation     : {med(r.rows_per_s for r in sat):>9,.0f} rows/s, "
          f"{med(r.rows_per_commit for r in sat):,.0f} rows per commit, "
          f"{med(r.commit_us_per_row for r in sat):7.1f} us of commit per row")
    print(f"  rounds         : {', '.join(f'{r:.0f}x' for r in sat_ratios)}")
    ratio = med(sat_ratios)
    print(f"outbox_append: {ratio:.0f}x per-row durable commit at saturation "
          f"({med(r.rows_per_commit for r in sat):,.0f} rows per commit; at the 20-rig load "
          f"{base_us / load_us:.1f}x with {med(r.rows_per_commit for r in load):.1f}) "
          f"(goal >= {GOAL:.0f}x)")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
