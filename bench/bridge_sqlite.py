"""Bridge throughput from the broker into SQLite: records/s sustained, goal >= 5,000/s.

Real parts: Mosquitto with the pitbox auth plugin on a free port, a device publishing wire
envelopes (QoS 1, 200 records per message as the uplink batches them) from its own process
with an RS256 JWT, and the bridge (in this process) filing them into a SQLite file. The rate
is records from the bridge's first message to its last acknowledgement. It is printed as a
ratio against the live rate of a 20-rig venue, computed from the defaults:

    20 rigs x (normalize.sample_hz samples/s + laps, states and events of a 22-car field)

(`bench/bridge_firestore.py` reuses the harness here.) Bounded: a fixed message count and a
deadline per run.

    .venv/bin/python bench/bridge_sqlite.py [--messages N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud.bridge.run import Bridge
from cloud.broker.run import Broker
from cloud.registry import keys_dir
from cloud.store.base import Store
from gateway import config
from gateway.records import Lap, Sample, StintState
from gateway.uplink.wire import Envelope, encode

AUDIENCE = "pitbox-bench"
DEVICE = "bench-box-01"
SID = "bench@f1-2024#silverstone#00000000000000b1"
RECORDS_PER_MESSAGE = 200  # the uplink's default batch_records
RIGS = 20
CARS = 22
LAP_S = 90.0  # a typical F1 lap
EVENTS_PER_RIG_S = 0.1  # pit, flags, penalties, overtakes …: generous


def live_rate() -> float:
    """Records/s a 20-rig venue sends: samples at the default rate, plus every car's lap and
    stint state once per lap, plus events."""
    sample_hz = config.load(None).normalize.sample_hz
    per_rig = sample_hz + 2 * CARS / LAP_S + EVENTS_PER_RIG_S
    return RIGS * per_rig


def sample(seq: int) -> Sample:
    return Sample("rig-1", SID, seq, seq, 0, 1 + seq // 900, float(seq % 5000), 250, 7, 11000,
                  1.0, 0.0, 40.0, "soft")


def payloads(messages: int) -> tuple[list[tuple[str, bytes]], int]:
    """(kind, payload) per message and the record count: samples, and every 20th message the
    field's laps and states (hot documents)."""
    out, seq = [], 0
    for m in range(messages):
        if m % 20 == 19:
            lap_no = m // 20
            laps = [(seq + c, Lap("rig-1", SID, seq, seq, c, lap_no, 90_000, (30_000,) * 3, True,
                                  c + 1, 40.0, 1.6, "kg", "soft", lap_no, False, False, 1,
                                  lap_no, c == 0)) for c in range(CARS)]
            states = [(seq + CARS + c, StintState("rig-1", SID, seq, seq, c, 1, lap_no, False,
                                                  None, None, None, None, c == 0))
                      for c in range(CARS)]
            seq += 2 * CARS
            out.append(("lap", encode(Envelope(DEVICE, "rig-1", SID, "lap", 1, tuple(laps)))))
            out.append(("state", encode(Envelope(DEVICE, "rig-1", SID, "state", 1,
                                                 tuple(states)))))
            continue
        recs = tuple((seq + i, sample(seq + i)) for i in range(RECORDS_PER_MESSAGE))
        seq += RECORDS_PER_MESSAGE
        out.append(("sample", encode(Envelope(DEVICE, "rig-1", SID, "sample", 1, recs))))
    return out, seq


def publish(host: str, port: int, private_pem: bytes, messages: int) -> None:
    """The device, in its own process: publish everything at QoS 1, 100 in flight."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 3600, "aud": AUDIENCE}, private_pem,
                       algorithm="RS256")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=mqtt.MQTTv5)
    client.username_pw_set("unused", token)
    client.max_inflight_messages_set(100)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    infos = [client.publish(f"/devices/{DEVICE}/events/{kind}", body, qos=1)
             for kind, body in payloads(messages)[0]]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


@dataclass
class Venue:
    """A broker with the bench device registered, for the runs of one bench."""

    broker: Broker
    password: str
    private_pem: bytes


def start_venue(workdir: Path) -> Venue:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    keys_dir.add(workdir / "keys", DEVICE, public)
    password = secrets.token_urlsafe(16)
    broker = Broker(workdir / "broker", audience=AUDIENCE, keys_dir=workdir / "keys",
                    accounts={"bridge": password}).start()
    return Venue(broker, password, private)


def run_bridge(venue: Venue, store: Store, messages: int, *, deadline_s: float = 120.0,
               **bridge_kw: Any) -> tuple[float, int, dict[str, int]]:
    """Publish `messages` from a device process through the broker into `store` via a fresh
    bridge; (records/s, records, bridge stats)."""
    total_msgs = len(payloads(messages)[0])
    records = payloads(messages)[1]
    b = Bridge(store, host=venue.broker.host, port=venue.broker.port, username="bridge",
               password=venue.password, group=f"bench-{secrets.token_hex(4)}",
               client_id=f"bench-{secrets.token_hex(4)}", **bridge_kw)
    b.start()
    try:
        end = time.monotonic() + 10
        while not b.subscribed.is_set() and time.monotonic() < end:
            time.sleep(0.01)
        proc = multiprocessing.get_context("fork").Process(
            target=publish, args=(venue.broker.host, venue.broker.port, venue.private_pem,
                                  messages))
        proc.start()
        t_first = t_last = None
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            now = time.perf_counter()
            if t_first is None and b.stats["messages"]:
                t_first = now
            if b.stats["acked"] >= total_msgs:
                t_last = now
                break
            time.sleep(0.002)
        proc.join(30)
    finally:
        b.stop()
    if t_first is None or t_last is None:
        raise SystemExit(f"bench: the bridge did not finish in {deadline_s} s: {dict(b.stats)}")
    return b.stats["records"] / (t_last - t_first), b.stats["records"], dict(b.stats) | {
        "expected_records": records}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000,
                        help="messages to publish (default 2000: ~380k records, several batches)")
    args = parser.parse_args()
    from cloud.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory(prefix="pitbox-bench-") as tmp:
        venue = start_venue(Path(tmp))
        try:
            store = SqliteStore(Path(tmp) / "warm.db")
            run_bridge(venue, store, 40)  # warm-up: imports, JIT-less caches, broker
            store.close()
            store = SqliteStore(Path(tmp) / "store.db")
            rate, records, stats = run_bridge(venue, store, args.messages)
            stored = sum(len(store.docs(c)) for c in store.collections())
            store.close()
        finally:
            venue.broker.stop()
    live = live_rate()
    print(f"bridge_sqlite: {records} records in {stats['acked']} messages, "
          f"{stats['writes']} store writes, {stored} documents stored")
    print(f"bridge_sqlite: live rate of {RIGS} rigs = {live:.0f} records/s "
          f"({config.load(None).normalize.sample_hz:g} Hz samples + laps/states/events)")
    print(f"bridge_sqlite: {rate:,.0f} records/s sustained (goal >= 5,000/s); "
          f"{rate / live:.1f}x the 20-rig live rate")
    return 0 if rate >= 5000 else 1


if __name__ == "__main__":
    sys.exit(main())
