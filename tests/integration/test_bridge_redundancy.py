"""Two bridge processes (`pitbox bridge run`) on one shared subscription; one is SIGKILLed
mid-stream. Mosquitto 2.0 keeps routing a dead member's share into its persistent session
(measured: it does not hand it to the survivor), and those messages were already PUBACKed
to the device. The survivor sees the dead one's Last Will on its presence topic and drains
its session (takeover); if the killed one comes back first under the same client id, it
resumes the session itself. Either way every record is in the store exactly once.

Every process started here is stopped here by PID; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.bridge.presence import ONLINE, presence_topic
from cloud.bridge.run import Bridge
from cloud.store.base import Store
from cloud.store.sqlite import SqliteStore
from gateway.uplink.wire import Envelope, encode
from tests.contract.firestore_fixtures import PROJECT, firestore_emulator, firestore_host
from tests.integration.test_bridge import Device, bridge_login, device, wait_for
from tests.unit import records_factory as rf

REPO = Path(__file__).resolve().parents[2]
SID = rf.SID
__all__ = ["device", "firestore_emulator", "firestore_host"]  # fixtures this module uses

MESSAGES = 240
SAMPLES_PER_MESSAGE = 20


class BridgeProcess:
    """`pitbox bridge run` as a child process, its log in a file."""

    def __init__(self, broker: Any, args: list[str], client_id: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        _, password = bridge_login(broker)
        self.log = log
        self.client_id = client_id
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pitbox", "bridge", "run", "--host", broker.host,
                 "--port", str(broker.port), "--client-id", client_id, "--stats-every", "0.5",
                 *args],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                env={**os.environ, **(env or {}), "PITBOX_BRIDGE_PASSWORD": password})
        self.start_offset = 0

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_subscribed(self) -> None:
        wait_for(f"{self.client_id} subscribed", lambda: self.text().count("subscribed to")
                 > self.start_offset or self.proc.poll() is not None, 30)
        assert self.proc.poll() is None, self.text()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def final_stats(self) -> dict[str, int]:
        found = re.findall(r"bridge: stopped \(([^)]*)\)", self.text())
        assert found, f"{self.client_id} logged no final counters:\n{self.text()[-2000:]}"
        return {k: int(v) for k, v in (kv.split("=") for kv in found[-1].split(", "))}


def plan() -> list[tuple[str, list[int]]]:
    """(kind, seqs) per message: samples; every 10th a lap; two states in every 10, at an
    even and an odd position, so both instances get some (Mosquitto alternates)."""
    out, seq = [], 0
    for m in range(MESSAGES):
        n = 1 if m % 10 in (4, 7, 9) else SAMPLES_PER_MESSAGE
        kind = {4: "state", 7: "state", 9: "lap"}.get(m % 10, "sample")
        out.append((kind, list(range(seq + 1, seq + 1 + n))))
        seq += n
    return out


def messages(device: Device) -> list[tuple[str, bytes]]:
    out = []
    for m, (kind, seqs) in enumerate(plan()):
        if kind == "lap":
            recs: tuple[tuple[int, Any], ...] = ((seqs[0], rf.lap(m)),)
        elif kind == "state":
            recs = ((seqs[0], replace(rf.state(2), stint_laps=m)),)
        else:
            recs = tuple((s, rf.sample(s)) for s in seqs)
        out.append((kind, encode(Envelope(device.id, "rig-a", SID, kind, 1, recs))))
    return out


def expected_docs(device: Device) -> tuple[set[str], set[str], int]:
    """Sample doc ids, the session collection's doc ids, the last state's seq."""
    samples = {f"{device.id}-{s}" for kind, seqs in plan() if kind == "sample" for s in seqs}
    laps = {str(m) for m, (kind, _) in enumerate(plan()) if kind == "lap"}
    last_state = max(seqs[0] for kind, seqs in plan() if kind == "state")
    return samples, laps | {"state"}, last_state


def stored(store: Store) -> int:
    return len(store.docs(SID + "~samples")) + len(store.docs(SID))


@pytest.fixture
def bridges() -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for b in started:
        b.kill(signal.SIGTERM)


@pytest.fixture(params=["sqlite", "firestore"])
def store_and_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[
        tuple[Store, list[str]]]:
    """A store for the test to read, and the `bridge run` options that name the same one."""
    s: Store
    if request.param == "sqlite":
        from cloud.store.sqlite import SqliteStore
        s = SqliteStore(tmp_path / "store.db")
        args = ["--store", "sqlite", "--db", str(tmp_path / "store.db")]
    else:
        request.getfixturevalue("firestore_host")  # emptied; bridges inherit the env var
        from cloud.store.firestore import FirestoreStore
        s = FirestoreStore(PROJECT)
        args = ["--store", "firestore", "--project", PROJECT]
    yield s, args
    s.close()


def start_pair(broker: Any, tmp_path: Path, bridges: list[BridgeProcess],
               store_args: list[str]) -> tuple[BridgeProcess, BridgeProcess, list[str]]:
    group = f"redundant-{uuid.uuid4().hex[:8]}"
    args = [*store_args, "--group", group]
    a = BridgeProcess(broker, args, f"{group}-a", tmp_path / "a.log")
    b = BridgeProcess(broker, args, f"{group}-b", tmp_path / "b.log")
    bridges += [a, b]
    a.wait_subscribed()
    b.wait_subscribed()
    return a, b, args


def kill_mid_stream(device: Device, store: Store, victim: BridgeProcess) -> None:
    """Publish the whole plan; SIGKILL `victim` once a quarter of it is stored."""
    samples, session_docs, _ = expected_docs(device)
    total = len(samples) + len(session_docs)

    def publish_all() -> None:
        for kind, payload in messages(device):
            device.publish(kind, payload)
            time.sleep(0.01)

    publisher = threading.Thread(target=publish_all, name="device")
    publisher.start()
    try:
        wait_for("a quarter of the records stored", lambda: stored(store) >= total // 4, 30)
        assert victim.kill() == -signal.SIGKILL
        at_kill = stored(store)
        assert at_kill < total, "the stream ended before the kill: not mid-stream"
    finally:
        publisher.join(60)
    assert not publisher.is_alive()


def assert_exactly_once(device: Device, store: Store, *procs: BridgeProcess) -> None:
    samples, session_docs, last_state = expected_docs(device)
    total = len(samples) + len(session_docs)
    try:
        wait_for("every record in the store", lambda: stored(store) == total, 30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {stored(store)} of {total}; the bridges' logs:\n"
                             + "\n".join(p.text()[-3000:] for p in procs)) from None
    time.sleep(0.5)  # let anything still in flight land before counting
    sample_docs = store.docs(SID + "~samples")
    assert {d for d, _ in sample_docs} == samples and len(sample_docs) == len(samples)
    assert all(d == f"{device.id}-{doc['seq']}" for d, doc in sample_docs)
    assert {d for d, _ in store.docs(SID)} == session_docs
    # both instances wrote states: the newest one stands, once its hot interval (2 s) is up
    wait_for("the newest state", lambda: (store.get(SID, "state") or {}).get("seq")
             == last_state, 10)
    assert store.docs("deadletters") == []


def session_left(broker: Any, client_id: str) -> bool:
    """Whether the broker still holds a session for `client_id` (connect without ending it:
    clean_start=False, then leave with expiry 0 so this probe changes nothing that matters)."""
    username, password = bridge_login(broker)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    present: list[bool] = []
    client.on_connect = lambda c, u, flags, rc, p: present.append(flags.session_present)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        wait_for("the probe's CONNACK", lambda: present)
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


def retained(broker: Any, topic: str) -> bytes | None:
    """The retained message on `topic`, or None. No sleep-and-hope: the probe subscribes to
    `topic/#` (which matches `topic` itself), waits for the SUBACK, then publishes a sentinel on
    `topic/<token>`. The broker queues retained messages when it handles the SUBSCRIBE, ahead
    of the sentinel, so once the sentinel is back everything retained has arrived. (No bridge
    sees the sentinel: their presence filter matches one level below the group only.)"""
    username, password = bridge_login(broker)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    sentinel = f"{topic}/sentinel-{uuid.uuid4().hex[:8]}"
    got: list[bytes] = []
    granted, back = threading.Event(), threading.Event()

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.topic == sentinel:
            back.set()
        elif m.topic == topic and m.retain:
            got.append(bytes(m.payload))

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[Any], p: Any) -> None:
        assert not any(r.is_failure for r in reasons), reasons
        granted.set()

    client.on_message, client.on_subscribe = on_message, on_subscribe
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        wait_for("the probe's CONNACK", client.is_connected)
        client.subscribe(f"{topic}/#", 1)
        assert granted.wait(10), f"no SUBACK for {topic}/#"
        client.publish(sentinel, b"sentinel", qos=1)
        assert back.wait(10), f"the sentinel on {sentinel} never came back"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[-1] if got else None


def test_a_bridge_killed_for_good_is_drained_by_the_survivor_exactly_once(
        broker: Any, device: Device, tmp_path: Path, bridges: list[BridgeProcess],
        store_and_args: tuple[Store, list[str]]) -> None:
    store, store_args = store_and_args
    a, b, args = start_pair(broker, tmp_path, bridges, store_args)
    assert retained(broker, presence_topic(args[-1], a.client_id)) == ONLINE  # the probe sees
    kill_mid_stream(device, store, a)  # and never restarted
    assert_exactly_once(device, store, a, b)
    wait_for("the takeover to end A's session", lambda: "and ended it" in b.text(), 20)
    assert f"taking over the session of {a.client_id!r}" in b.text()
    assert not session_left(broker, a.client_id)  # nothing parked at the broker any more
    assert retained(broker, presence_topic(args[-1], a.client_id)) is None  # presence cleared

    assert b.kill(signal.SIGTERM) == 0
    sb = b.final_stats()
    assert sb["takeovers_drained"] == 1 and sb["takeover_messages"] > 0, sb
    assert sb.get("dead_letters", 0) == 0 and sb.get("errors", 0) == 0


def test_a_killed_bridge_that_comes_back_under_its_id_loses_and_doubles_nothing(
        broker: Any, device: Device, tmp_path: Path, bridges: list[BridgeProcess],
        store_and_args: tuple[Store, list[str]]) -> None:
    """Whoever holds the session when the peer returns carries on: the restarted one resumes
    it, or the survivor already drained it; both end with every record once."""
    store, store_args = store_and_args
    a, b, args = start_pair(broker, tmp_path, bridges, store_args)
    kill_mid_stream(device, store, a)
    a2 = BridgeProcess(broker, args, a.client_id, a.log)  # same client id: same session
    a2.start_offset = a.text().count("subscribed to")
    bridges.append(a2)
    a2.wait_subscribed()
    assert_exactly_once(device, store, a2, b)

    for p in (b, a2):
        assert p.kill(signal.SIGTERM) == 0
    sb, sa2 = b.final_stats(), a2.final_stats()
    assert sb["acked"] > 0, sb
    # The returning instance resumed its session, or the survivor had drained it first (its
    # 2 s grace can end before the restarted process is up): then a2 has nothing to write.
    assert sa2.get("acked", 0) > 0 or sb.get("takeovers_drained", 0) == 1, (sb, sa2)
    assert sb.get("dead_letters", 0) == 0 and sa2.get("dead_letters", 0) == 0


def test_two_instances_with_default_client_ids_on_one_host_do_not_kick_each_other(
        broker: Any, tmp_path: Path) -> None:
    username, password = bridge_login(broker)
    group = f"same-host-{uuid.uuid4().hex[:8]}"
    stores = [SqliteStore(tmp_path / f"{i}.db") for i in range(2)]
    pair = [Bridge(s, host=broker.host, port=broker.port, username=username, password=password,
                   group=group) for s in stores]
    try:
        for b in pair:
            b.start()
        for b in pair:
            wait_for("both subscribed", b.subscribed.is_set)
        assert pair[0].client_id != pair[1].client_id
        time.sleep(2.5)  # paho reconnects within 1-2 s after being kicked off
        assert [b.stats["connects"] for b in pair] == [1, 1]
        assert all(b.subscribed.is_set() for b in pair)
    finally:
        for b in pair:
            b.stop()
        for s in stores:
            s.close()
