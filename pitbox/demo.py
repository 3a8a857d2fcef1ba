"""`pitbox demo`: the whole pipeline on this machine, on embedded defaults, then a summary.

provision a device key → register it → start Mosquitto with our auth plugin on a free port →
start the bridge into a SQLite store → start the gateway on a free UDP port → send the shipped
sample F1 session to it over UDP → wait until the outbox drained and the store has it all →
print what arrived → stop everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cloud.bridge.run import Bridge
from cloud.broker.run import Broker
from cloud.registry import keys_dir
from cloud.store.sqlite import SqliteStore
from firmware.cli import provision
from gateway import config
from gateway.recorder import is_capture, iter_datagrams
from gateway.replay import send_udp
from gateway.service import Gateway

SAMPLE = Path(__file__).resolve().parents[1] / "gateway" / "sim" / "sample_session.pbxcap"
AUDIENCE = "pitbox-demo"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline locally on embedded defaults",
                       description="Start a local broker (Mosquitto + the pitbox auth plugin), the "
                       "bridge with a SQLite store and the gateway; replay the shipped sample F1 "
                       "session over UDP; print what arrived; stop everything. Needs no config.")
    p.add_argument("--capture", default=str(SAMPLE), help="capture file to replay (default: the sample session)")
    p.add_argument("--speed", type=float, default=10.0, help="replay speed (default 10x)")
    p.add_argument("--workdir", type=Path, help="keep keys, outbox, store and logs here (default: a temp dir, removed)")
    p.set_defaults(func=cmd_demo)


@dataclass
class DemoResult:
    datagrams: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)
    own_laps_emitted: int = 0
    acked_records: int = 0
    acked_messages: int = 0
    outbox_left: int = -1
    laps_in_store: dict[str, list[int]] = field(default_factory=dict)
    docs_in_store: int = 0
    session_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        stored = sum(len(v) for v in self.laps_in_store.values())
        return self.outbox_left == 0 and self.own_laps_emitted > 0 and stored == self.own_laps_emitted


def cmd_demo(args: argparse.Namespace) -> int:
    is_capture(args.capture)  # a missing or unreadable file fails here, before anything starts
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run_demo(args.workdir, capture=args.capture, speed=args.speed)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="pitbox-demo-"))
        try:
            result = run_demo(tmp, capture=args.capture, speed=args.speed)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(result)
    return 0 if result.ok else 1


def say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def run_demo(workdir: Path, *, capture: str = str(SAMPLE), speed: float = 10.0) -> DemoResult:
    t0 = time.monotonic()
    device_id, pub_path, _ = provision(workdir / "box", "pitbox-demo-01")
    keys = workdir / "cloud" / "keys"
    keys_dir.add(keys, device_id, pub_path.read_bytes())
    say(f"provisioned {device_id} and registered its public key")
    password = secrets.token_urlsafe(16)
    result = DemoResult()
    with Broker(workdir / "broker", audience=AUDIENCE, keys_dir=keys,
                accounts={"bridge": password}, persistence=True, hold_devices=True) as broker:
        say(f"broker (Mosquitto + pitbox auth plugin) on 127.0.0.1:{broker.port}")
        store = SqliteStore(workdir / "cloud" / "store.sqlite")
        bridge = Bridge(store, host=broker.host, port=broker.port, username="bridge", password=password)
        bridge.start()
        try:
            cfg = config.with_overrides(
                config.load(None),
                device={"id": device_id, "project": AUDIENCE, "key_path": str(workdir / "box" / "device_key.pem")},
                capture={"f1_bind": "127.0.0.1", "f1_port": 0},
                outbox={"path": str(workdir / "box" / "outbox.sqlite")},
                uplink={"host": broker.host, "port": broker.port})
            asyncio.run(_run_gateway(cfg, capture, speed, result))
            _wait_for_store(store, bridge, result)
        finally:
            bridge.stop()
            store.close()
    result.wall_s = time.monotonic() - t0
    return result


async def _run_gateway(cfg: config.Config, capture: str, speed: float, result: DemoResult) -> None:
    gw = Gateway(cfg)
    await gw.start()
    say(f"gateway listening on udp 127.0.0.1:{gw.capture.port}; replaying {Path(capture).name} at {speed:g}x")
    sent = await asyncio.to_thread(send_udp, capture, "127.0.0.1", gw.capture.port, speed=speed)
    for _ in range(100):  # let the last datagrams reach the socket; bounded, 2 s
        if gw.pipeline.datagrams >= sent:
            break
        await asyncio.sleep(0.02)
    gw.pipeline.commit()
    say("replay done; waiting for the outbox to drain")
    drained = await gw.stop(drain_s=30)
    p = gw.pipeline
    result.datagrams = p.datagrams
    result.dropped = dict(p.dropped)
    result.emitted = dict(p.records)
    result.own_laps_emitted = p.own_laps
    stamps = [item.ts_ns for item in iter_datagrams(capture)]
    result.session_s = (max(stamps) - min(stamps)) / 1e9 if stamps else 0.0
    result.acked_records = gw.pump.acked_records
    result.acked_messages = gw.pump.acked_messages
    result.outbox_left = 0 if drained else -1
    if not drained:
        say("outbox did NOT drain within 30 s")


def _wait_for_store(store: SqliteStore, bridge: Bridge, result: DemoResult) -> None:
    """The broker has everything (PUBACKs); give the bridge ≤ 15 s to commit it."""
    deadline = time.monotonic() + 15
    while True:
        docs = 0
        laps: dict[str, list[int]] = {}
        for coll in store.collections():
            entries = store.docs(coll)
            if coll != "deadletters":
                docs += len(entries)
            if any(doc_id == "info" for doc_id, _ in entries):  # a session's collection
                laps[coll] = sorted(int(d) for d, _ in entries if d.isdigit())
        result.laps_in_store, result.docs_in_store = laps, docs
        if sum(len(v) for v in laps.values()) >= result.own_laps_emitted or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def print_summary(r: DemoResult) -> None:
    samples = r.emitted.get("sample", 0)
    rate = samples / r.session_s if r.session_s else 0.0
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(r.dropped.items())) or "none"
    print("pitbox demo: what arrived")
    print(f"  capture   {r.datagrams} datagrams over UDP; dropped: {dropped}")
    print("  normalize " + ", ".join(f"{v} {k}" for k, v in sorted(r.emitted.items()))
          + f"; {rate:.1f} samples/s of session time")
    left = "drained (0 rows left)" if r.outbox_left == 0 else "NOT drained"
    print(f"  outbox    {left}; {r.acked_records} records in {r.acked_messages} messages acked by the broker")
    for coll, laps in r.laps_in_store.items():
        print(f"  store     {coll}: laps {laps}")
    print(f"  store     {r.docs_in_store} documents in the SQLite store")
    verdict = ("every lap of the sample session is in the store"
               if r.ok else f"MISSING: {r.own_laps_emitted} own-car laps emitted")
    print(f"  result    {verdict} ({r.wall_s:.1f} s)")
