"""Bridge into Firestore (Google's emulator): batched commits vs one write per record, goal >= 5x.

The same pipeline both times (device process → Mosquitto with the auth plugin → bridge →
Firestore emulator), the same kind of traffic (200-record sample messages, laps and states of
a 22-car field); only the store differs: the `FirestoreStore` the bridge runs with (one
commit per <= 500 writes, independent commits up to `COMMIT_WORKERS` at once) against the
same store committing every document on its own (what a bridge without batching does; it
gets the same cheap protobuf encoding, so the ratio is batching's alone). The emulator is warmed up first (its first few
hundred RPCs are ~3x slower) and emptied between runs. Bounded: fixed message counts and a
deadline per run. Emulator figures are ratios, not production capacities.

    .venv/bin/python bench/bridge_firestore.py [--messages N] [--baseline-messages N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridge_sqlite import run_bridge, start_venue

from cloud.store.base import DocWrite
from cloud.store.emulator import FirestoreEmulator
from cloud.store.firestore import COMMIT_WORKERS, FirestoreStore

PROJECT = "demo-pitbox-bench"


class OneWritePerRecord:
    """The baseline: every document its own commit (one RPC per record)."""

    def __init__(self, inner: FirestoreStore) -> None:
        self.inner = inner

    def write(self, docs: Sequence[DocWrite]) -> None:
        for doc in docs:
            self.inner.write([doc])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def raw_sets(store: FirestoreStore, n: int) -> float:
    """For scale: sequential `DocumentReference.set()` straight from the client, no bridge."""
    client = store._client  # the bench peeks at the client on purpose
    t0 = time.perf_counter()
    for i in range(n):
        client.collection("raw").document(f"{i:06d}").set({"i": i, "rig": "rig-1"})
    return n / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=160, help="messages, batched run")
    parser.add_argument("--baseline-messages", type=int, default=20,
                        help="messages, one-write-per-record run (it is slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pitbox-bench-") as tmp:
        emu = FirestoreEmulator(Path(tmp) / "emulator.log").start()
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        venue = start_venue(Path(tmp))
        store = FirestoreStore(PROJECT)
        try:
            store.write([DocWrite("warmup", str(i), {"i": i}) for i in range(3000)])
            for i in range(300):
                store.write([DocWrite("warmup", f"single-{i}", {"i": i})])
            raw_rate = raw_sets(store, 1000)
            emu.reset(PROJECT)
            base_rate, base_records, _ = run_bridge(venue, OneWritePerRecord(store),  # type: ignore[arg-type]
                                                    args.baseline_messages)
            emu.reset(PROJECT)
            before = store.stats["commits"]
            rate, records, stats = run_bridge(venue, store, args.messages)
            commits = store.stats["commits"] - before
            stored = sum(len(store.docs(c)) for c in store.collections())
        finally:
            store.close()
            venue.broker.stop()
            emu.stop()
    print(f"bridge_firestore: for scale, bare sequential set() without the bridge: "
          f"{raw_rate:,.0f} docs/s")
    print(f"bridge_firestore: one write per record: {base_records} records, "
          f"{base_rate:,.0f} records/s")
    print(f"bridge_firestore: batched: {records} records in {commits} commits "
          f"(<= 500 writes each, <= {COMMIT_WORKERS} at once), {stored} documents, "
          f"{rate:,.0f} records/s "
          f"({stats['hot_writes']} hot-document writes for {stats['merges']} merges)")
    ratio = rate / base_rate
    print(f"bridge_firestore: {ratio:.1f}x one-write-per-record (goal >= 5x)")
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
