"""`pitbox bridge run --store firestore` (a real process) into Google's emulator: the
Teamtactics layout, device state, and bad messages as dead letters that never stop it."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest

from cloud.store.firestore import FirestoreStore
from gateway.uplink.wire import MAX_MESSAGE_BYTES, Envelope, encode
from tests.contract.firestore_fixtures import PROJECT, firestore_emulator, firestore_host
from tests.integration.test_bridge import Device, device, laps, wait_for
from tests.integration.test_bridge_redundancy import BridgeProcess
from tests.unit import records_factory as rf

__all__ = ["device", "firestore_emulator", "firestore_host"]  # fixtures this module uses
SID = rf.SID


@pytest.fixture
def fs_bridge(broker: Any, firestore_host: str, tmp_path: Path) -> Iterator[BridgeProcess]:
    group = f"fs-{uuid.uuid4().hex[:8]}"
    proc = BridgeProcess(broker, ["--store", "firestore", "--project", PROJECT, "--group", group],
                         f"{group}-1", tmp_path / "bridge.log")
    try:
        proc.wait_subscribed()
        yield proc
    finally:
        proc.kill(signal.SIGTERM)


def test_records_state_and_bad_messages_reach_firestore_and_the_bridge_carries_on(
        device: Device, fs_bridge: BridgeProcess) -> None:
    store = FirestoreStore(PROJECT)
    try:
        good = Envelope(device.id, "rig-a", SID, "lap", 1, laps(3))
        wrong_version = msgpack.unpackb(encode(good))
        wrong_version["v"] = 7
        device.publish("lap", encode(replace(good, device="box-impostor")))
        device.publish("lap", b"\x92\xc1 garbage")
        device.publish("lap", b"\x00" * (MAX_MESSAGE_BYTES + 1))
        device.publish("lap", msgpack.packb(wrong_version))
        device.send((1, rf.session()))
        device.send(*laps(1, 2))
        device.send((40, rf.state(2)), (41, replace(rf.state(3), stint_laps=5)))
        device.send((50, rf.sample(1)), (51, rf.sample(2)))
        device.client.publish(f"/devices/{device.id}/state",
                              json.dumps({"outbox_rows": 0}).encode(), qos=1).wait_for_publish(10)

        wait_for("four dead letters", lambda: len(store.docs("deadletters")) == 4, 20)
        wait_for("the session's docs", lambda: len(store.docs(SID)) == 4, 20)
        codes = sorted(d["code"] for _, d in store.docs("deadletters"))
        assert codes == ["device_mismatch", "malformed", "oversize", "unknown_version"]
        docs = dict(store.docs(SID))
        assert sorted(docs) == ["1", "2", "info", "state"]
        assert (docs["state"]["seq"], docs["state"]["stint"], docs["state"]["stint_laps"]) == (
            41, 3, 5)
        assert docs["info"]["track"] == "silverstone"
        assert [d for d, _ in store.docs(SID + "~samples")] == [f"{device.id}-50",
                                                                f"{device.id}-51"]
        wait_for("the device's state", lambda: (store.get("devices", device.id) or {})
                 .get("state") == {"outbox_rows": 0}, 20)
        assert fs_bridge.proc.poll() is None
    finally:
        store.close()
    assert fs_bridge.kill(signal.SIGTERM) == 0
    stats = fs_bridge.final_stats()
    assert stats["dead_letters"] == 4 and stats["acked"] == 9 and stats["records"] == 7


def test_samples_are_queryable_by_session_and_rig_in_firestore(
        device: Device, fs_bridge: BridgeProcess) -> None:
    """What a strategy app runs: the session's samples collection, `where("rig", "==", …)`."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    other_sid = SID.replace("00000000000000aa", "00000000000000bb")
    for rig, sid, seqs in (("rig-a", SID, range(1, 4)), ("rig-b", SID, range(4, 8)),
                           ("rig-b", other_sid, range(8, 10))):
        recs = tuple((s, rf.sample(s, rig=rig, sid=sid)) for s in seqs)
        device.publish("sample", encode(Envelope(device.id, rig, sid, "sample", 1, recs)))
    client = firestore.Client(project=PROJECT)
    try:
        def by_rig(sid: str, rig: str) -> list[tuple[str, int]]:
            query = client.collection(sid + "~samples").where(
                filter=FieldFilter("rig", "==", rig))
            return sorted((snap.id, snap.get("seq")) for snap in query.stream())

        wait_for("every sample", lambda: len(by_rig(SID, "rig-b")) == 4
                 and len(by_rig(other_sid, "rig-b")) == 2, 20)
        assert by_rig(SID, "rig-b") == [(f"{device.id}-{s}", s) for s in range(4, 8)]
        assert by_rig(SID, "rig-a") == [(f"{device.id}-{s}", s) for s in range(1, 4)]
        assert by_rig(other_sid, "rig-b") == [(f"{device.id}-{s}", s) for s in (8, 9)]
        assert by_rig(other_sid, "rig-a") == []
        snap = next(iter(client.collection(SID + "~samples").where(
            filter=FieldFilter("rig", "==", "rig-a")).limit(1).stream()))
        assert snap.get("lap_distance_m") == 101.0 and snap.get("device") == device.id
    finally:
        client.close()  # type: ignore[no-untyped-call]


def test_the_bridge_reads_no_document_before_writing_records(
        broker: Any, device: Device, firestore_host: str) -> None:
    """Idempotent on (device, seq) by document id, not by looking first: laps, samples and
    events cost no read; only the guarded hot documents read, once per write, not per record."""
    from cloud.bridge.run import Bridge
    from tests.integration.test_bridge import bridge_login

    store, check = FirestoreStore(PROJECT), FirestoreStore(PROJECT)
    username, password = bridge_login(broker)
    try:
        with Bridge(store, host=broker.host, port=broker.port, username=username,
                    password=password, group=f"reads-{uuid.uuid4().hex[:8]}",
                    client_id=f"reads-{uuid.uuid4().hex[:8]}") as b:
            wait_for("the bridge's subscription", b.subscribed.is_set, 10)
            for m in range(5):
                device.send(*((100 + 20 * m + i, rf.sample(i)) for i in range(20)))
                device.send(*laps(m + 1))
            device.send((300, rf.event()))
            device.send(*laps(1, 2))  # resent: rewritten, still not read
            wait_for("every message acknowledged", lambda: b.stats["acked"] == 12, 20)
            assert store.stats["reads"] == 0, store.stats
            assert store.stats["writes"] >= 106 and b.stats["records"] == 108

            for i in range(4):  # states: hot documents, each guarded write reads its doc
                device.send((400 + i, replace(rf.state(2), stint_laps=i)))
            wait_for("the last state", lambda: (check.get(SID, "state") or {}).get("seq")
                     == 403, 20)
            wait_for("every message acknowledged", lambda: b.stats["acked"] == 16, 20)
            assert 1 <= store.stats["reads"] <= b.stats["hot_writes"] < 4
        assert len(check.docs(SID + "~samples")) == 100  # and they are all there
        before = store.stats["reads"]
        store.get(SID, "1")
        store.docs(SID)
        assert store.stats["reads"] == before + 1 + 6  # the counter does count reads
    finally:
        store.close()
        check.close()
