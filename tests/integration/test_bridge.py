"""The bridge against the real broker (Mosquitto + our auth plugin) and a real SQLite file.

A registered device logs in with an RS256 JWT minted here and publishes wire envelopes at
QoS 1; the bridge files them in the Teamtactics layout. Every wait is bounded (≤ 10 s) and
every client and bridge started here is stopped here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from paho.mqtt.enums import CallbackAPIVersion

from cloud.bridge.run import Bridge
from cloud.store.base import DocWrite
from cloud.store.errors import DocumentError, StoreError
from cloud.store.sqlite import SqliteStore
from gateway.records import Record
from gateway.uplink.wire import Envelope, encode
from tests.unit import records_factory as rf

WAIT_S = 10.0
SID = rf.SID


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def bridge_login(broker: Any) -> tuple[str, str]:
    """The bridge's service account on the test broker (see broker_fixtures.py)."""
    return broker.bridge_username, broker.bridge_password


class Device:
    """A box as the broker sees it: its own key, a JWT login, publishes to its own topics."""

    def __init__(self, broker: Any, device_id: str) -> None:
        self.id = device_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        register_device(broker, device_id, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        now = int(time.time())
        token = jwt.encode({"iat": now, "exp": now + 600, "aud": broker.audience}, key,
                           algorithm="RS256")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set("unused", token)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        wait_for("the device's CONNACK", self.client.is_connected)

    def publish(self, kind: str, payload: bytes) -> None:
        info = self.client.publish(f"/devices/{self.id}/events/{kind}", payload, qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), "no PUBACK from the broker"

    def send(self, *records: tuple[int, Record], device: str | None = None) -> None:
        kind = records[0][1].KIND
        env = Envelope(device or self.id, "rig-a", SID, kind, time.time_ns(), tuple(records))
        self.publish(kind, encode(env))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def register_device(broker: Any, device_id: str, public_pem: bytes) -> None:
    from cloud.registry import keys_dir
    keys_dir.add(Path(broker.keys_dir), device_id, public_pem)


@pytest.fixture
def device(broker: Any) -> Iterator[Device]:
    dev = Device(broker, f"box-{uuid.uuid4().hex[:8]}")
    yield dev
    dev.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "bridge.db")
    yield s
    s.close()


@pytest.fixture
def bridge(broker: Any, store: SqliteStore) -> Iterator[Bridge]:
    username, password = bridge_login(broker)
    # a group per test: messages of one test never reach another test's bridge
    b = Bridge(store, host=broker.host, port=broker.port, username=username, password=password,
               group=f"test-{uuid.uuid4().hex[:8]}", client_id=f"bridge-{uuid.uuid4().hex[:8]}")
    b.start()
    try:
        wait_for("the bridge's subscription", b.subscribed.is_set)
        yield b
    finally:
        b.stop()


def laps(*lap_nos: int) -> tuple[tuple[int, Record], ...]:
    return tuple((100 + n, rf.lap(n)) for n in lap_nos)


def test_a_session_its_laps_state_and_samples_become_teamtactics_docs(
        device: Device, bridge: Bridge, store: SqliteStore) -> None:
    device.send((1, rf.session()))
    device.send(*laps(1, 2, 3))
    device.send((200, rf.state(2)))
    device.send((300, rf.sample(1)), (301, rf.sample(2)))

    wait_for("all documents", lambda: len(store.docs(SID)) == 5
             and len(store.docs(SID + "~samples")) == 2)
    docs = dict(store.docs(SID))
    assert sorted(docs) == ["1", "2", "3", "info", "state"]
    assert docs["info"]["track"] == "silverstone" and docs["info"]["device"] == device.id
    assert docs["2"]["lap_time_ms"] == 90_002 and docs["2"]["seq"] == 102
    assert (docs["state"]["stint"], docs["state"]["seq"]) == (2, 200)
    assert [d for d, _ in store.docs(SID + "~samples")] == [f"{device.id}-300", f"{device.id}-301"]
    assert bridge.stats["records"] == 7 and bridge.stats["dead_letters"] == 0
    wait_for("every message acknowledged", lambda: bridge.stats["acked"] == 4)


def test_resent_messages_leave_exactly_one_doc_per_lap(
        device: Device, bridge: Bridge, store: SqliteStore) -> None:
    for _ in range(3):  # what a box does when a PUBACK was lost: send the same rows again
        device.send(*laps(1, 2, 3))
    wait_for("three messages handled", lambda: bridge.stats["acked"] == 3)
    assert [d for d, _ in store.docs(SID)] == ["1", "2", "3"]
    assert bridge.stats["records"] == 9


def test_an_older_state_in_the_same_batch_does_not_overwrite_a_newer_one(
        device: Device, bridge: Bridge, store: SqliteStore) -> None:
    newer = replace(rf.state(3), stint_laps=4)
    device.send((51, newer), (50, rf.state(2)))
    wait_for("the state doc", lambda: store.get(SID, "state"))
    state = store.get(SID, "state")
    assert state is not None and (state["seq"], state["stint"], state["stint_laps"]) == (51, 3, 4)


def test_garbage_and_a_foreign_device_land_in_deadletters_and_the_bridge_carries_on(
        device: Device, bridge: Bridge, store: SqliteStore) -> None:
    device.publish("lap", b"\xc1 this is not msgpack")
    device.send(*laps(7), device="box-someone-else")
    wait_for("two dead letters", lambda: len(store.docs("deadletters")) == 2)

    device.send(*laps(8))
    wait_for("the later good lap", lambda: store.get(SID, "8"))
    assert store.get(SID, "7") is None
    reasons = sorted(d["reason"] for _, d in store.docs("deadletters"))
    assert reasons[0].startswith("envelope device 'box-someone-else' is not the topic's device")
    assert reasons[1].startswith("not msgpack")
    garbage = next(d for _, d in store.docs("deadletters") if d["reason"].startswith("not"))
    assert garbage["topic"] == f"/devices/{device.id}/events/lap"
    assert garbage["payload_bytes"] == 21 and garbage["payload_hex"].startswith("c120")
    wait_for("every message acknowledged", lambda: bridge.stats["acked"] == 3)


class WrappedStore:
    """The real SQLite store with `before_write(docs)` run before each write: it may raise
    (an outage, a refusal, a bug) or count. `attempts` counts the writes tried."""

    def __init__(self, inner: SqliteStore,
                 before_write: Callable[[Sequence[DocWrite]], None]) -> None:
        self.inner, self.before_write = inner, before_write
        self.attempts = 0

    def write(self, docs: Sequence[DocWrite]) -> None:
        self.attempts += 1
        self.before_write(docs)
        self.inner.write(docs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def raising(error: Exception, when: Callable[[Sequence[DocWrite]], bool] = lambda docs: True,
            ) -> Callable[[Sequence[DocWrite]], None]:
    """A `before_write` that raises `error` on the writes `when` picks (by default all)."""
    def before_write(docs: Sequence[DocWrite]) -> None:
        if when(docs):
            raise error
    return before_write


def holding_lap(*lap_nos: int) -> Callable[[Sequence[DocWrite]], bool]:
    """Picks the writes that hold one of these laps of SID."""
    ids = {str(n) for n in lap_nos}
    return lambda docs: any(d.collection == SID and d.doc_id in ids for d in docs)


def test_messages_not_committed_before_a_stop_are_redelivered_to_the_restarted_bridge(
        broker: Any, device: Device, store: SqliteStore) -> None:
    username, password = bridge_login(broker)
    group, client_id = f"test-{uuid.uuid4().hex[:8]}", f"bridge-{uuid.uuid4().hex[:8]}"
    failing = WrappedStore(store, raising(StoreError("disk gone")))
    with Bridge(failing, host=broker.host, port=broker.port,
                username=username, password=password, group=group, client_id=client_id) as first:
        wait_for("the first bridge's subscription", first.subscribed.is_set)
        device.send(*laps(1, 2))
        wait_for("two failed writes", lambda: failing.attempts >= 2)
        assert first.stats["acked"] == 0
    with Bridge(store, host=broker.host, port=broker.port, username=username,
                password=password, group=group, client_id=client_id) as second:
        wait_for("the redelivered laps", lambda: len(store.docs(SID)) == 2)
        wait_for("the redelivered message acknowledged", lambda: second.stats["acked"] == 1)


def test_oversize_and_unknown_version_land_in_deadletters_and_the_bridge_carries_on(
        device: Device, bridge: Bridge, store: SqliteStore) -> None:
    import msgpack

    from gateway.uplink.wire import MAX_MESSAGE_BYTES
    body = msgpack.unpackb(encode(Envelope(device.id, "rig-a", SID, "lap", 1, laps(3))))
    body["v"] = 99  # a version from the future
    device.publish("lap", msgpack.packb(body))
    device.publish("lap", b"\x00" * (MAX_MESSAGE_BYTES + 10))
    device.send(*laps(4))
    wait_for("the later good lap", lambda: store.get(SID, "4"))
    wait_for("two dead letters", lambda: len(store.docs("deadletters")) == 2)
    codes = sorted(d["code"] for _, d in store.docs("deadletters"))
    assert codes == ["oversize", "unknown_version"]
    assert store.get(SID, "3") is None
    assert (bridge.stats["dead_oversize"], bridge.stats["dead_unknown_version"]) == (1, 1)
    wait_for("every message acknowledged", lambda: bridge.stats["acked"] == 3)


def test_a_hot_state_doc_is_written_at_most_once_a_second_and_ends_at_the_latest(
        broker: Any, device: Device, store: SqliteStore) -> None:
    per_doc: Counter[tuple[str, str]] = Counter()
    counting = WrappedStore(store, lambda docs: per_doc.update(
        (d.collection, d.doc_id) for d in docs))
    username, password = bridge_login(broker)
    with Bridge(counting, host=broker.host, port=broker.port,
                username=username, password=password, group=f"test-{uuid.uuid4().hex[:8]}",
                client_id=f"bridge-{uuid.uuid4().hex[:8]}") as b:
        wait_for("the bridge's subscription", b.subscribed.is_set)
        t0 = time.monotonic()
        for i in range(25):  # 25 states in ~1.25 s, one message each
            device.send((500 + i, replace(rf.state(2), stint_laps=i)))
            device.client.publish(f"/devices/{device.id}/state", b'{"outbox_rows": %d}' % i,
                                  qos=1).wait_for_publish(WAIT_S)
            time.sleep(0.05)
        wait_for("the last state", lambda: (store.get(SID, "state") or {}).get("seq") == 524)
        wait_for("the last device state",
                 lambda: (store.get("devices", device.id) or {}).get("state")
                 == {"outbox_rows": 24})
        elapsed_s = time.monotonic() - t0
        wait_for("all 50 messages acknowledged", lambda: b.stats["acked"] == 50)
    allowed = int(elapsed_s) + 2  # one write per started second, plus the first
    assert 1 <= per_doc[(SID, "state")] <= allowed
    assert 1 <= per_doc[("devices", device.id)] <= allowed
    assert b.stats["merges"] == 50 and b.stats["hot_writes"] < 50


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of 10-50 ms, so the writer's ten tries before it gives up take < 1 s."""
    from cloud.bridge import run
    monkeypatch.setattr(run, "BACKOFF_MIN_S", 0.01)
    monkeypatch.setattr(run, "BACKOFF_MAX_S", 0.05)


BUG = AttributeError("'NoneType' object has no attribute 'commit'")  # a store client's bug


def batching_bridge(store: Any, broker: Any) -> Bridge:
    """A bridge whose batches wait 0.5 s, so messages sent together share one batch."""
    username, password = bridge_login(broker)
    return Bridge(store, host=broker.host, port=broker.port, username=username,
                  password=password, group=f"test-{uuid.uuid4().hex[:8]}",
                  client_id=f"bridge-{uuid.uuid4().hex[:8]}", batch_wait_s=0.5)


def lap_13_of_one_batch_dead_lettered(b: Bridge, device: Device,
                                      store: SqliteStore) -> dict[str, Any]:
    """Laps 12, 13, 14 in one batch: 12 and 14 are stored, 13 is the one dead letter (returned)
    and every message is acknowledged."""
    wait_for("the bridge's subscription", b.subscribed.is_set)
    for n in (12, 13, 14):
        device.send(*laps(n))
    wait_for("all three messages acknowledged", lambda: b.stats["acked"] == 3, 5)
    assert [d for d, _ in store.docs(SID)] == ["12", "14"]
    [(_, dead)] = store.docs("deadletters")
    assert dead["topic"] == f"/devices/{device.id}/events/lap"
    return dead


def test_a_message_a_store_bug_trips_alone_is_dead_lettered_and_the_others_are_written(
        broker: Any, device: Device, store: SqliteStore, fast_backoff: None) -> None:
    """Before: one poisoned message failed its batch ERRORS_BEFORE_EXIT times and the bridge
    exited; the broker handed the message to the restarted bridge (or to a survivor draining
    the dead session), which exited too: every bridge of the group restarting for ever,
    nothing written. Now, after the bug, the batch is written message by message: the others
    are stored, the poisoned one becomes a `bridge_error` dead letter (also when it comes
    alone, as a redelivered one does) and the bridge carries on."""
    poisoned = WrappedStore(store, raising(BUG, holding_lap(13, 16)))
    with batching_bridge(poisoned, broker) as b:
        dead = lap_13_of_one_batch_dead_lettered(b, device, store)
        assert dead["code"] == "bridge_error"
        assert dead["reason"] == f"bridge error: AttributeError: {BUG}"
        device.send(*laps(16))  # alone in its batch
        wait_for("the lone poisoned message acknowledged", lambda: b.stats["acked"] == 4, 5)
        device.send(*laps(17))
        wait_for("the next lap", lambda: store.get(SID, "17"))
        assert not b.finished.is_set() and b.error is None
        # one failed round per poisoned batch, then its message alone became a dead letter
        assert (b.stats["errors"], b.stats["dead_bridge_error"]) == (2, 2)
    assert [d for d, _ in store.docs(SID)] == ["12", "14", "17"]
    assert len(store.docs("deadletters")) == 2


def test_a_store_bug_on_every_write_acknowledges_nothing_and_the_writer_gives_up(
        broker: Any, device: Device, store: SqliteStore, fast_backoff: None) -> None:
    """A store client broken for every write: not even a dead letter can be written, so
    nothing is acknowledged or dead-lettered, and after ERRORS_BEFORE_EXIT failed rounds the
    writer ends with a BridgeError (the CLI exits non-zero on it; before, the writer thread
    died while the process stayed up); the same session, resumed, gets every message again."""
    from cloud.bridge.run import ERRORS_BEFORE_EXIT, BridgeError

    username, password = bridge_login(broker)
    group, client_id = f"test-{uuid.uuid4().hex[:8]}", f"bridge-{uuid.uuid4().hex[:8]}"
    broken = WrappedStore(store, raising(BUG))
    with Bridge(broken, host=broker.host, port=broker.port,
                username=username, password=password, group=group, client_id=client_id,
                batch_wait_s=0.5) as b:  # so the three messages share one batch
        wait_for("the bridge's subscription", b.subscribed.is_set)
        for n in (12, 13, 14):
            device.send(*laps(n))
        wait_for("the writer to give up", b.finished.is_set, 5)
        assert isinstance(b.error, BridgeError)
        assert "AttributeError: 'NoneType' object has no attribute 'commit'" in str(b.error)
        assert b.stats["errors"] == ERRORS_BEFORE_EXIT
        # the batch once; then every round its first message alone, and that one's dead letter
        assert broken.attempts == 1 + 2 * (ERRORS_BEFORE_EXIT - 1)
        assert b.stats["acked"] == 0 and b.stats["dead_letters"] == 0
    assert store.docs("deadletters") == [] and store.docs(SID) == []
    with Bridge(store, host=broker.host, port=broker.port, username=username,
                password=password, group=group, client_id=client_id) as again:
        wait_for("every message acknowledged", lambda: again.stats["acked"] == 3)
    assert [d for d, _ in store.docs(SID)] == ["12", "13", "14"]
    assert store.docs("deadletters") == []


# `pitbox bridge run` on a store broken for every write: argv[1] the SQLite file, then the
# CLI's arguments.
_BUGGY_CLI = """
import sys
from cloud import cli
from cloud.bridge import run
from cloud.store.sqlite import SqliteStore
from pitbox.cli import main
from tests.integration.test_bridge import WrappedStore, raising
run.BACKOFF_MIN_S, run.BACKOFF_MAX_S = 0.01, 0.05
cli.open_store = lambda *a, **kw: WrappedStore(SqliteStore(sys.argv[1]),
                                               raising(AttributeError("boom")))
sys.exit(main(sys.argv[2:]))
"""


def test_pitbox_bridge_run_exits_non_zero_when_its_writer_gives_up(
        broker: Any, device: Device, tmp_path: Path) -> None:
    """So that its supervisor (systemd's Restart=on-failure, a container runtime) restarts
    it, instead of a process that is up and writes nothing (before: it waited for a signal for
    ever)."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BUGGY_CLI, str(tmp_path / "store.db"), "bridge", "run",
             "--host", broker.host, "--port", str(broker.port), "--stats-every", "0",
             "--group", f"test-{uuid.uuid4().hex[:8]}"],
            cwd=repo, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            env={**os.environ, "PITBOX_BRIDGE_PASSWORD": bridge_login(broker)[1]})
    try:
        wait_for("the bridge's subscription", lambda: "subscribed to" in log.read_text()
                 or proc.poll() is not None)
        device.send(*laps(13))
        code = proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT_S)
    assert code == 1, log.read_text()[-2000:]
    assert ("pitbox: error: gave up after 10 failures in a row, the last: AttributeError: boom"
            in log.read_text())


def test_a_document_the_store_refuses_dead_letters_its_message_only(
        broker: Any, device: Device, store: SqliteStore) -> None:
    refusing = WrappedStore(store, raising(
        DocumentError(f"{SID}/13 is longer than 1048487 bytes"), holding_lap(13)))
    with batching_bridge(refusing, broker) as b:
        dead = lap_13_of_one_batch_dead_lettered(b, device, store)
        assert dead["code"] == "bad_document"
        assert dead["reason"] == f"store refused: {SID}/13 is longer than 1048487 bytes"
        assert b.stats["dead_bad_document"] == 1 and b.stats["errors"] == 0
        device.send(*laps(15))  # and it carries on
        wait_for("the next lap", lambda: store.get(SID, "15"))


def test_a_bug_while_filing_dead_letters_that_message_only(
        broker: Any, device: Device, store: SqliteStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Filing is pure and never raises on bad input; a bug in it (stood in for here by a
    filing that raises on one payload) must not hold the message unacknowledged."""
    from cloud.bridge import writer
    from cloud.bridge.filing import file_message as real

    poison = encode(Envelope(device.id, "rig-a", SID, "lap", 1, laps(21)))

    def buggy(prefix: str, topic: str, payload: bytes, **kw: Any) -> Any:
        if payload == poison:
            raise KeyError("lap_no")
        return real(prefix, topic, payload, **kw)

    monkeypatch.setattr(writer, "file_message", buggy)
    username, password = bridge_login(broker)
    with Bridge(store, host=broker.host, port=broker.port, username=username,
                password=password, group=f"test-{uuid.uuid4().hex[:8]}",
                client_id=f"bridge-{uuid.uuid4().hex[:8]}") as b:
        wait_for("the bridge's subscription", b.subscribed.is_set)
        device.publish("lap", poison)
        device.send(*laps(22))
        wait_for("both messages acknowledged", lambda: b.stats["acked"] == 2, 5)
    assert [d for d, _ in store.docs(SID)] == ["22"]
    [(_, dead)] = store.docs("deadletters")
    assert (dead["code"], dead["reason"]) == ("bridge_error", "bridge error: KeyError: 'lap_no'")


def kick(broker: Any, bridge: Bridge) -> None:
    """Take the bridge's session for a moment (as its restarted twin would) and leave it, so
    the bridge reconnects and the broker sends it every unacknowledged message again."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    username, password = bridge_login(broker)
    twin = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=bridge.client_id,
                       protocol=mqtt.MQTTv5, manual_ack=True, reconnect_on_failure=False)
    twin.username_pw_set(username, password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600  # the session, and what it holds, outlives the twin
    props.ReceiveMaximum = 2
    connects = bridge.stats["connects"]
    twin.connect(broker.host, broker.port, clean_start=False, properties=props)
    twin.loop_start()
    try:
        wait_for("the twin's CONNACK", twin.is_connected)
    finally:
        twin.disconnect()
        twin.loop_stop()
    wait_for("the bridge back in its session", lambda: bridge.stats["connects"] > connects)


def test_paho_keeps_serving_the_connection_while_the_store_is_down_and_the_queue_full(
        broker: Any, device: Device, store: SqliteStore) -> None:
    """Before: on_message waited (up to 60 s) for room in the queue, while the writer retried
    the store and took nothing; paho's network thread then sent no PINGREQ and the broker
    dropped the bridge, again and again. Here every reconnect refills the queue (Receive
    Maximum 2, room for 4) with the same messages; the stale copies must give way, and a
    presence message must still be read at once."""
    from cloud.bridge.presence import ONLINE, presence_topic

    up = threading.Event()
    down = WrappedStore(store, raising(StoreError("Firestore unavailable"),
                                       lambda docs: not up.is_set()))
    username, password = bridge_login(broker)
    group = f"test-{uuid.uuid4().hex[:8]}"
    with Bridge(down, host=broker.host, port=broker.port,
                username=username, password=password, group=group,
                client_id=f"bridge-{uuid.uuid4().hex[:8]}", queue_max=2, batch_max=1) as b:
        wait_for("the bridge's subscription", b.subscribed.is_set)
        for n in range(1, 5):
            device.send(*laps(n))
        wait_for("the writer retrying its first batch", lambda: down.attempts >= 1)
        kick(broker, b)  # the queue: 1 stale + 2 or 3 live (Mosquitto 2.0.11 resends 3)
        kick(broker, b)  # before: the 2nd resent message waited for room, and so did paho
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        probe.username_pw_set(username, password)
        probe.connect(broker.host, broker.port)
        probe.loop_start()
        try:
            # QoS 0: Receive Maximum holds back QoS 1 messages only, and its window is full
            probe.publish(presence_topic(group, "ghost"), ONLINE, qos=0).wait_for_publish(WAIT_S)
            wait_for("the presence read", lambda: "ghost" in b.redundancy.peers.online())
        finally:
            probe.disconnect()
            probe.loop_stop()
        assert b.stats["acked"] == 0
        up.set()
        wait_for("every lap", lambda: len(store.docs(SID)) == 4)
        wait_for("every message acknowledged", lambda: b.stats["acked"] == 4)
        assert b.stats["stale_dropped"] >= 2 and b.stats["queue_full"] == 0
    assert store.docs("deadletters") == []


def test_a_hot_document_whose_row_is_no_json_any_more_holds_nothing_up(
        device: Device, bridge: Bridge, store: SqliteStore) -> None:
    """Before: the store called the merge into that row an outage (`StoreError`), so the
    bridge retried the batch for ever and nothing after it was written. Now the store refuses
    that write (`DocumentError`) and sets the row aside; written one by one, the batch goes
    in and the state document starts afresh."""
    store.write([DocWrite(SID, "state", {"seq": 1})])
    with store.db.conn:  # the file changed behind the store's back
        store.db.conn.execute("UPDATE docs SET data = '{broken' WHERE doc_id = 'state'")
    device.send((200, rf.state(2)))
    device.send(*laps(1))
    wait_for("both messages acknowledged", lambda: bridge.stats["acked"] == 2)
    state = store.get(SID, "state")  # (read before the bridge wrote it, it raised)
    assert state is not None and state["seq"] == 200 and store.get(SID, "1")
    [(_, aside)] = store.docs("unreadable")
    assert (aside["collection"], aside["doc_id"], aside["text"]) == (SID, "state", "{broken")
    assert bridge.stats["store_errors"] == 0 and store.docs("deadletters") == []
