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
