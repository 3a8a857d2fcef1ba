"""Uplink volume with default settings, as a share of the raw F1 UDP bytes (issue 3: <= 2 %).

Simulated rigs (60 Hz setting, format 2025, every packet type at its real rate, a full race
with a pit stop per car) go through the real pipeline into a real outbox. The uplink side is
modelled at its most wasteful: after every 50 ms group commit, whatever is committed leaves
at once in default-sized batches (so messages are as small and envelopes as many as a box
that keeps up sends), and each message is charged its MQTT PUBLISH overhead (fixed header,
topic, packet id). Also checks that every lap and event the normalizer made is in a message.

    .venv/bin/python bench/uplink_volume.py [--rigs 4] [--laps 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import config
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.sim.f1 import simulate_rigs
from gateway.uplink import topics
from gateway.uplink.batching import batch

COMMIT_NS = 50_000_000  # the default commit window
DEVICE = "pitbox-a1b2c3"  # a typical provisioned id


def publish_overhead(topic: str, payload_len: int) -> int:
    """Bytes of an MQTT 3.1.1 QoS 1 PUBLISH besides the payload."""
    remaining = 2 + len(topic) + 2 + payload_len
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16_384 else 3
    return 1 + length_bytes + 2 + len(topic) + 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rigs", type=int, default=4, help="simulated rigs (default 4)")
    ap.add_argument("--laps", type=int, default=3, help="race laps (default 3)")
    ap.add_argument("--lap-time", type=float, default=30.0, help="seconds per lap (default 30)")
    args = ap.parse_args()
    cfg = config.load(None)
    t0 = time.perf_counter()
    raw = mqtt = payloads = messages = 0
    sent_kinds: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "outbox.sqlite")
        pipe = Pipeline(box, sample_hz=cfg.normalize.sample_hz)
        topic = topics.events(cfg.uplink.prefix, DEVICE, "lap")
        next_commit = None

        def ship(now_ns: int) -> None:
            nonlocal mqtt, payloads, messages
            pipe.commit()
            rows = box.claim(1_000_000)
            for msg in batch(rows, device=DEVICE, sent_ns=now_ns,
                             max_records=cfg.uplink.batch_records):
                payloads += len(msg.payload)
                mqtt += len(msg.payload) + publish_overhead(topic, len(msg.payload))
                messages += 1
                sent_kinds.update(r.kind for r in msg.rows)
            box.ack(rows)

        for ts, src, payload in simulate_rigs(args.rigs, 2025, laps=args.laps, hz=60,
                                              lap_time_s=args.lap_time, num_cars=20):
            raw += len(payload)
            pipe.on_datagram(payload, src, ts, ts)
            if next_commit is None:
                next_commit = ts + COMMIT_NS
            elif ts >= next_commit:
                ship(ts)
                next_commit += COMMIT_NS
        ship(next_commit or 0)
        box.close()
    made = pipe.records
    print(f"uplink volume: {args.rigs} rigs x {args.laps} laps, 60 Hz, format 2025, defaults "
          f"(sample_hz {cfg.normalize.sample_hz:g}, batch_records {cfg.uplink.batch_records}); "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"  raw UDP payload : {raw:>12,} bytes in {pipe.datagrams:,} datagrams")
    print("  records         : " + ", ".join(f"{v} {k}" for k, v in sorted(made.items())))
    print(f"  uplink          : {mqtt:>12,} bytes in {messages:,} MQTT messages "
          f"({payloads:,} of it msgpack envelopes)")
    kept = all(sent_kinds[k] == made[k] for k in ("lap", "event", "session", "state"))
    print(f"  laps and events : {'all' if kept else 'NOT all'} sent "
          f"({sent_kinds['lap']} laps, {sent_kinds['event']} events)")
    print(f"uplink_volume: {100 * mqtt / raw:.2f} % of the raw UDP bytes (goal <= 2 %)")
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
