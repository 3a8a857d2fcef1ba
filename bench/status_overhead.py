"""Status overhead: what the LEDs + health file cost the gateway's loop, goal <= 0.1x of one
rig's data path.

The status task runs on the same asyncio loop as capture, so its work is time the data path
does not get. One second of status work = 20 LED refreshes (gpiozero MockFactory pins) + one
step (sample the real outbox's counters, judge health, write health.json atomically). The
baseline, measured in the same run: one second of one rig's F1 telemetry (the shipped sample
session's packet mix, timed per datagram, at a live rig's ~355 datagrams/s) through decode →
normalize → outbox commit on a real SQLite file. health.json goes to /dev/shm when there is
one (a tmpfs, like /run on the box). Bounded: fixed repetition counts.

    .venv/bin/python bench/status_overhead.py [--seconds N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpiozero.pins.mock import MockFactory

from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.recorder import iter_datagrams
from gateway.status.health import HealthModel, Sample
from gateway.status.leds import LedPanel
from gateway.status.monitor import StatusMonitor
from pitbox.demo import SAMPLE

GOAL = 0.1
RIG_DATAGRAMS_PER_S = 355  # F1 at 60 Hz: ~7,100 datagrams/s for 20 rigs (gateway/capture)


def data_path_s_per_second(work: Path) -> float:
    """CPU seconds one rig's second of telemetry costs the pipeline: the sample's mix of
    packets, timed per datagram, at a live rig's rate."""
    items = list(iter_datagrams(str(SAMPLE)))
    outbox = Outbox(work / "outbox.sqlite")
    pipeline = Pipeline(outbox)
    start = time.perf_counter()
    for i, item in enumerate(items):
        pipeline.on_datagram(item.payload, item.src, item.ts_ns, item.ts_ns)
        if i % 20 == 0:  # the commit loop's 50 ms window at the recorded rate, roughly
            pipeline.commit()
    pipeline.commit()
    cost = time.perf_counter() - start
    outbox.close()
    return cost / len(items) * RIG_DATAGRAMS_PER_S


def status_s_per_second(work: Path, seconds: int) -> float:
    outbox = Outbox(work / "status-outbox.sqlite")
    factory = MockFactory()
    clock_ms = [0]
    panel = LedPanel((17, 27, 22), pin_factory=factory, clock=lambda: clock_ms[0] / 1000)
    datagrams = [0]

    def sample() -> Sample:
        return Sample(mono_s=clock_ms[0] / 1000, ready=True, datagrams=datagrams[0],
                      uplink_connected=False, outbox_pending=outbox.pending(), clock_sane=True,
                      outbox_fill=outbox.used_bytes() / 2**30)

    run = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    report = Path(tempfile.mkdtemp(dir=run)) / "health.json"
    monitor = StatusMonitor(sample, HealthModel(outbox_budget_rows=500_000), panel,
                            report_path=report)
    start = time.perf_counter()
    for _ in range(seconds):  # bounded
        datagrams[0] += 60
        monitor.step()
        for _ in range(20):
            clock_ms[0] += 50
            panel.refresh()
    cost = time.perf_counter() - start
    panel.close()
    outbox.close()
    report.unlink()
    report.parent.rmdir()
    return cost / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=200, help="status seconds to simulate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        baseline = data_path_s_per_second(work)
        status = status_s_per_second(work, args.seconds)
    print(f"one rig's data path: {baseline * 1e3:.3f} ms per second of telemetry")
    print(f"status (20 LED refreshes + 1 health step): {status * 1e3:.3f} ms per second")
    print(f"status_overhead: {status / baseline:.3f}x one rig's data path (goal <= {GOAL}x)")
    return 0 if status / baseline <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
