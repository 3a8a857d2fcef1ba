"""Steady state, 20 rigs, loopback broker: latency from UDP receipt at the gateway to a
subscriber, per record (issue 5's goal: p99 <= 50 ms).

Everything real: Mosquitto with the auth plugin, `pitbox gateway run` as its own process,
20 rigs of simulated F1 traffic in real time over UDP from 127.0.0.2-21, a QoS 1 subscriber on
the bridge account. The baseline, measured in the same run, is a bare paho QoS 1 publish to
the same broker (no capture, outbox or batching): the floor any uplink sits on.

    .venv/bin/python bench/uplink_latency.py [--seconds 20] [--commit-window-ms MS]
        [--messages-per-s 100] [--rigs 20]

Bounded: the traffic lasts `--seconds` (+3 s warm-up), then at most 15 s to collect.
Exits 1 when the p99 of all records misses the goal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.uplink_harness import (
    URGENT,
    Cloud,
    Sender,
    Subscriber,
    baseline_ms,
    cpu_seconds,
    describe,
    free_udp_port,
    percentile,
    rig_traffic,
    start_gateway,
    stop_gateway,
)
from gateway import config

DEFAULTS = config.load(None)  # the gateway's embedded defaults

WARMUP_S = 3.0
GOAL_P99_MS = 50.0  # issue 5: steady state, 20 rigs, UDP receipt -> subscriber; exit 1 above


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured traffic (default 20)")
    ap.add_argument("--rigs", type=int, default=20, help="rigs (default 20)")
    ap.add_argument("--commit-window-ms", type=int, default=DEFAULTS.outbox.commit_window_ms,
                    help="outbox group commit window (default: the gateway's)")
    ap.add_argument("--messages-per-s", type=float, default=100.0,
                    help="uplink message-rate cap (Cloud IoT Core: 100)")
    ap.add_argument("--batch-records", type=int, default=DEFAULTS.uplink.batch_records,
                    help="records per message at most (default: the gateway's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cloud = Cloud(work, "bench-latency")
        try:
            base = baseline_ms(cloud)
            sub = Subscriber(cloud)
            port = free_udp_port()
            traffic = rig_traffic(args.rigs, args.seconds + WARMUP_S)
            gw = start_gateway(work, cloud, port, work / "outbox.sqlite",
                               commit_window_ms=args.commit_window_ms,
                               messages_per_s=args.messages_per_s,
                               batch_records=args.batch_records)
            try:
                sender = Sender(port, traffic, args.rigs)
                sender.start()
                sender.join(args.seconds + WARMUP_S + 30)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:  # let the last records arrive
                    before = len(sub.raw)
                    time.sleep(1.0)
                    if len(sub.raw) == before:
                        break
            finally:
                cpu = cpu_seconds(gw.pid)
                stop_gateway(gw)
                sub.close()
        finally:
            cloud.close()
    sub.collect()
    per_kind = {k: [(s, ms) for s, ms, _ in v] for k, v in sub.latency_ms.items()}
    first_seq = min((s for v in per_kind.values() for s, _ in v), default=0)
    # Skip the warm-up: the first WARMUP_S of records (by sequence, approximated by share).
    total = sum(len(v) for v in per_kind.values())
    cut = first_seq + int(total * WARMUP_S / (args.seconds + WARMUP_S))
    measured = {k: [ms for s, ms in v if s >= cut] for k, v in per_kind.items()}
    urgent = [ms for k in URGENT for ms in measured.get(k, [])]
    samples = measured.get("sample", [])
    everything = urgent + samples
    print(f"uplink latency, {args.rigs} rigs, {sender.sent} datagrams in {args.seconds + WARMUP_S:.0f} s, "
          f"commit window {args.commit_window_ms} ms, cap {args.messages_per_s:.0f} msg/s, "
          f"{sub.messages} messages")
    print(f"  gateway process: {cpu:.1f} CPU s over the run")
    print(describe("bare MQTT baseline", base))
    for kind in sorted(measured):
        print(describe(kind, measured[kind]))
    print(describe("laps/events/states", urgent))
    print(describe("all records", everything))
    p99_all, p99_urgent, p99_base = (percentile(everything, 0.99), percentile(urgent, 0.99),
                                     percentile(base, 0.99))
    print(f"uplink_latency: p99 {p99_all:.1f} ms all records, {p99_urgent:.1f} ms laps/events/states "
          f"(goal <= {GOAL_P99_MS:.0f} ms); {p99_all / p99_base:.0f}x the bare-MQTT p99 of "
          f"{p99_base:.1f} ms")
    return 0 if everything and p99_all <= GOAL_P99_MS else 1  # no records measured: a miss


if __name__ == "__main__":
    sys.exit(main())
