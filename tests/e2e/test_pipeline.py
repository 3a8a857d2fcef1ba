"""The whole slice with every part real: UDP socket → gateway → SQLite outbox → Mosquitto with
the pitbox auth plugin → bridge → SQLite store. Only the data is ours: the shipped sample."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

from cloud.bridge.run import Bridge
from cloud.registry import keys_dir
from cloud.store.sqlite import SqliteStore
from firmware.cli import provision
from gateway import config
from gateway.decode.f1 import decode_packet
from gateway.normalize.f1 import F1Normalizer
from gateway.outbox import Outbox
from gateway.recorder import iter_datagrams
from gateway.records import Lap
from gateway.replay import send_udp
from gateway.service import Gateway
from pitbox.demo import SAMPLE
from tests.integration.broker_fixtures import BrokerHandle, new_rsa_key


def expected_own_laps() -> list[int]:
    """The own-car laps in the sample, straight from decode + normalize (no network)."""
    norm = F1Normalizer("127.0.0.1")
    laps = []
    for item in iter_datagrams(str(SAMPLE)):
        for rec in norm.feed(decode_packet(item.payload), ts_ns=item.ts_ns, mono_ns=0):
            if isinstance(rec, Lap) and rec.own_car:
                laps.append(rec.lap_no)
    return laps


def gateway_config(tmp: Path, broker: BrokerHandle, device_id: str) -> config.Config:
    return config.with_overrides(
        config.load(None),
        device={"id": device_id, "project": broker.audience,
                "key_path": str(tmp / "box" / "device_key.pem")},
        capture={"f1_bind": "127.0.0.1", "f1_port": 0},
        outbox={"path": str(tmp / "box" / "outbox.sqlite")},
        uplink={"host": broker.host, "port": broker.port, "prefix": broker.prefix})


def wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def lap_docs(store: SqliteStore) -> dict[str, list[int]]:
    return {coll: sorted(int(d) for d, _ in store.docs(coll) if d.isdigit())
            for coll in store.collections()
            if "~" not in coll and coll not in ("deadletters", "devices")}


def test_sample_session_over_udp_lands_every_own_lap_in_the_store_exactly_once(
        tmp_path: Path, broker: BrokerHandle) -> None:
    want = expected_own_laps()
    assert want == sorted(set(want)) and len(want) >= 5  # the sample: laps 1..N, once each
    device_id, pub, _ = provision(tmp_path / "box", "e2e-udp-01")
    keys_dir.add(broker.keys_dir, device_id, pub.read_bytes())
    store = SqliteStore(tmp_path / "store.sqlite")
    bridge = Bridge(store, host=broker.host, port=broker.port, username=broker.bridge_username,
                    password=broker.bridge_password, prefix=broker.prefix,
                    client_id="bridge-e2e-udp", group="e2e-udp")
    bridge.start()
    try:
        assert bridge.subscribed.wait(10)
        gw = Gateway(gateway_config(tmp_path, broker, device_id))

        async def run() -> tuple[int, bool]:
            await gw.start()
            sent = await asyncio.to_thread(send_udp, str(SAMPLE), "127.0.0.1", gw.capture.port,
                                           speed=50, progress=False)
            for _ in range(200):
                if gw.pipeline.datagrams >= sent:
                    break
                await asyncio.sleep(0.02)
            gw.pipeline.commit()
            return sent, await gw.stop(drain_s=30)

        sent, drained = asyncio.run(run())
        assert gw.pipeline.datagrams == sent and not gw.pipeline.dropped
        assert drained, "outbox did not drain into the broker"
        assert gw.pump.acked_records == sum(gw.pipeline.records.values())
        assert wait_for(lambda: list(lap_docs(store).values()) == [want], 15), lap_docs(store)
        (coll,) = lap_docs(store)
        assert coll.startswith("127.0.0.1@f1-2024#silverstone#")
        for lap_no in want:
            doc = store.get(coll, str(lap_no))
            assert doc is not None and doc["device"] == device_id and doc["lap_no"] == lap_no
            assert doc["lap_time_ms"] > 0
    finally:
        bridge.stop()
        store.close()


def test_a_box_whose_key_the_broker_does_not_know_is_refused_and_keeps_every_record(
        tmp_path: Path, broker: BrokerHandle) -> None:
    device_id, pub, _ = provision(tmp_path / "box", "e2e-wrongkey-01")
    _, other_public = new_rsa_key()
    keys_dir.add(broker.keys_dir, device_id, other_public)  # registered: someone else's key
    gw = Gateway(gateway_config(tmp_path, broker, device_id), live=False)

    async def replay_then_fix_the_registry() -> tuple[bool, int, bool]:
        await gw.start()
        for item in iter_datagrams(str(SAMPLE)):
            gw.pipeline.on_datagram(item.payload, item.src, item.ts_ns, time.monotonic_ns())
        gw.pipeline.commit()
        gw.pump.wakeup.set()
        await asyncio.sleep(3)  # several refused connection attempts
        refused_connected = gw.publisher.connected.is_set()
        pending_while_refused = gw.outbox.pending()
        keys_dir.add(broker.keys_dir, device_id, pub.read_bytes())  # the right key, now
        drained = await gw.stop(drain_s=40)
        return refused_connected, pending_while_refused, drained

    connected, pending, drained = asyncio.run(replay_then_fix_the_registry())
    emitted = sum(gw.pipeline.records.values())
    assert not connected
    assert emitted > 0 and pending == emitted, "a refused box must keep every record buffered"
    assert drained and gw.pump.acked_records == emitted
    log = broker.broker.log_path.read_text(errors="replace")
    assert f"pitbox_auth: bad token for device {device_id}" in log


def test_a_box_with_no_broker_keeps_every_record_in_its_outbox(tmp_path: Path) -> None:
    device_id, _, _ = provision(tmp_path / "box", "e2e-offline-01")
    cfg = config.with_overrides(
        config.load(None),
        device={"id": device_id, "key_path": str(tmp_path / "box" / "device_key.pem")},
        outbox={"path": str(tmp_path / "box" / "outbox.sqlite")},
        uplink={"host": "127.0.0.1", "port": 9})  # discard port: nothing listens
    gw = Gateway(cfg, live=False)

    async def run() -> None:
        await gw.start()
        for item in iter_datagrams(str(SAMPLE)):
            gw.pipeline.on_datagram(item.payload, item.src, item.ts_ns, time.monotonic_ns())
        gw.pipeline.commit()
        await gw.stop(drain_s=0.5)

    asyncio.run(run())
    db = sqlite3.connect(tmp_path / "box" / "outbox.sqlite")
    kinds = Counter({kind: n for kind, n in db.execute("select kind, sum(n) from outbox group by kind")})
    db.close()
    assert dict(kinds) == dict(gw.pipeline.records)
    box = Outbox(tmp_path / "box" / "outbox.sqlite")
    try:
        rows = box.claim(10_000)
    finally:
        box.close()
    assert Counter(r.kind for r in rows) == kinds
    assert all(r.to_dict()["rig"] and r.to_dict()["session_id"] for r in rows)
