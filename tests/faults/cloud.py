"""The fault tests' view of the cloud side, and the checks every fault test makes."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.bridge.run import Bridge
from cloud.broker.run import Broker
from cloud.store.sqlite import SqliteStore
from gateway.uplink import wire


class PersistentRecorder:
    """Every event message under /devices, on a persistent MQTT v5 session (survives a
    broker restart with persistence on). Keeps (envelope, receipt ns) in arrival order."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[wire.Envelope, int]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id="faults-recorder")
        self.client.username_pw_set("bridge", password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("/devices/+/events/+", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async(host, port, keepalive=10, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10), "recorder did not subscribe"

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        envs = wire.decode(bytes(m.payload))
        with self.lock:
            self.received += [(env, time.monotonic_ns()) for env in envs]

    def envelopes(self) -> list[wire.Envelope]:
        with self.lock:
            return [env for env, _ in self.received]

    def seqs(self) -> set[int]:
        return {seq for env in self.envelopes() for seq in env.seqs}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Cloud:
    broker: Broker
    keys_dir: Path
    password: str
    store: SqliteStore
    bridge: Bridge
    recorder: PersistentRecorder | None = field(default=None)

    def start_recorder(self) -> None:
        self.recorder = PersistentRecorder(self.broker.host, self.broker.port, self.password)

    @property
    def rec(self) -> PersistentRecorder:
        assert self.recorder is not None
        return self.recorder

    def restart_broker(self, down_s: float) -> None:
        self.broker.stop()
        time.sleep(down_s)
        self.broker.start()

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        self.bridge.stop()
        self.broker.stop()
        self.store.close()


def first_deliveries(envs: Iterable[wire.Envelope]) -> list[tuple[str, str, int, Any]]:
    """(rig, kind, seq, record) at the first arrival of each seq, in arrival order."""
    seen: set[int] = set()
    out = []
    for env in envs:
        for seq, rec in env.records:
            if seq not in seen:
                seen.add(seq)
                out.append((env.rig, env.kind, seq, rec))
    return out


def delivery_order_problems(envs: list[wire.Envelope], marks: Iterable[int]) -> list[str]:
    """Per rig and kind, within each lane interval (between two backlog marks: live data
    may overtake the backlog, nothing else may) first deliveries come in sequence order."""
    bounds = sorted(set(marks))
    by_stream: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for rig, kind, seq, _ in first_deliveries(envs):
        by_stream[(rig, kind, sum(1 for b in bounds if seq > b))].append(seq)
    return [f"{key}: delivered out of order: {seqs[:20]}"
            for key, seqs in by_stream.items() if seqs != sorted(seqs)]


def capture_order_problems(envs: list[wire.Envelope]) -> list[str]:
    """Per rig, sequence order must be capture order (also across restarts of the box)."""
    captured: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for rig, _, seq, rec in first_deliveries(envs):
        captured[rig].append((seq, rec.ts_ns))
    return [f"{rig}: sequence order is not capture order" for rig, pairs in captured.items()
            if [ts for _, ts in sorted(pairs)] != sorted(ts for _, ts in pairs)]


def store_seqs(store: SqliteStore) -> dict[str, list[int]]:
    """kind → seqs of the per-record documents (samples, events) in the store."""
    out: dict[str, list[int]] = defaultdict(list)
    for coll in store.collections():
        for suffix, kind in (("~samples", "sample"), ("~events", "event")):
            if coll.endswith(suffix):
                out[kind] += [int(d["seq"]) for _, d in store.docs(coll)]
    return out


def teamtactics_doc(device: str, seq: int, rec: Any) -> tuple[str, str]:
    """Where a record is filed, written out here from ARCHITECTURE.md's Teamtactics layout
    (not taken from the bridge, so the bridge is checked against it): in the session's
    collection `info`, `state` and one doc per lap (`1`, `2`, …) of the team's own car; other
    cars' laps and states in `{sid}~field`; events and samples one doc each (`{device}-{seq}`)."""
    sid = rec.session_id
    if rec.KIND == "session":
        return sid, "info"
    if rec.KIND == "lap":
        return (sid, str(rec.lap_no)) if rec.own_car else \
            (f"{sid}~field", f"{rec.car_idx:02d}-{rec.lap_no}")
    if rec.KIND == "state":
        return (sid, "state") if rec.own_car else (f"{sid}~field", f"{rec.car_idx:02d}-state")
    return f"{sid}~{rec.KIND}s", f"{device}-{seq}"


def store_problems(store: SqliteStore, envs: Iterable[wire.Envelope]) -> list[str]:
    """What the store lacks of the records delivered in `envs` ([] = nothing).

    Every sample, event and lap delivered has its own document holding its `seq`; the merged
    `info` and `state` documents hold the newest delivered `seq` of their session or car; and
    there is no sample or event document nobody delivered."""
    docs = {(coll, doc_id): data for coll in store.collections()
            for doc_id, data in store.docs(coll)}
    newest: dict[tuple[str, str], int] = {}
    missing: dict[str, list[int]] = defaultdict(list)
    wrong: list[str] = []
    device = ""
    per_record: set[tuple[str, str]] = set()
    for env in envs:
        device = env.device
        for seq, rec in env.records:
            key = teamtactics_doc(env.device, seq, rec)
            if rec.KIND in ("session", "state"):
                newest[key] = max(newest.get(key, 0), seq)
                continue
            doc = docs.get(key)
            if doc is None:
                missing[rec.KIND].append(seq)
            elif doc["seq"] != seq:
                wrong.append(f"{key} holds seq {doc['seq']}, not {rec.KIND} {seq}")
            per_record.add(key)
    for key, seq in newest.items():
        doc = docs.get(key)
        if doc is None or doc["seq"] != seq:
            kind = "session" if key[1] == "info" else "state"
            missing[kind].append(seq)
            wrong.append(f"{key} holds seq {None if doc is None else doc['seq']}, newest is {seq}")
    extra = [key for key in docs if key[0].endswith(("~samples", "~events"))
             and key[1].startswith(f"{device}-") and key not in per_record]
    out = [f"{len(v)} {k} records missing in the store, e.g. seq {sorted(v)[:5]}"
           for k, v in missing.items()]
    out += wrong[:10]
    if extra:
        out.append(f"{len(extra)} sample/event documents nobody delivered, e.g. {extra[:3]}")
    return out
