"""`hold_devices`: the broker refuses devices until the bridge's shared subscription exists.

Mosquitto 2.0 does not restore shared subscriptions from persistence: after a restart, a device
let in before the bridge re-subscribed would get PUBACKs for messages routed to nobody. Held
off, it keeps them in its outbox (tests/faults checks that end to end)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.broker.run import Broker
from tests.integration.broker_fixtures import BrokerHandle, register_device_key
from tests.integration.test_broker_auth import accepted, new_id, token, try_connect


@pytest.fixture
def held(tmp_path: Path) -> Iterator[BrokerHandle]:
    keys = tmp_path / "keys"
    keys.mkdir()
    password = secrets.token_urlsafe(12)
    broker = Broker(tmp_path / "broker", audience="pitbox-hold", keys_dir=keys,
                    accounts={"bridge": password}, hold_devices=True)
    broker.start()
    try:
        yield BrokerHandle(broker, keys, "pitbox-hold", {"bridge": password}, "bridge", password)
    finally:
        broker.stop()


def subscribe_as_bridge(handle: BrokerHandle, topic: str) -> mqtt.Client:
    """A bridge-account client subscribed to `topic` (returns after the SUBACK)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=new_id("bridge"),
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(handle.bridge_username, handle.bridge_password)
    suback = threading.Event()
    client.on_subscribe = lambda *_: suback.set()
    client.connect(handle.host, handle.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert suback.wait(10), f"no SUBACK for {topic}"
    return client


def close(client: mqtt.Client) -> None:
    client.loop_stop()
    client.disconnect()


def test_devices_wait_for_the_bridges_shared_subscription(held: BrokerHandle) -> None:
    device = new_id()
    key = register_device_key(held.keys_dir, device)
    assert not accepted(try_connect(held, device, token(held, key)))
    plain = subscribe_as_bridge(held, "/devices/+/events/+")  # a plain one does not count
    try:
        assert not accepted(try_connect(held, device, token(held, key)))
        shared = subscribe_as_bridge(held, "$share/bridge//devices/+/events/+")
        try:
            assert accepted(try_connect(held, device, token(held, key)))
        finally:
            close(shared)
    finally:
        close(plain)
    log = held.broker.log_path.read_text(errors="replace")
    assert f"pitbox_auth: holding device {device} off: no bridge has subscribed yet" in log
    assert "subscribed to device events; devices may connect" in log


def test_a_bad_token_is_still_refused_once_devices_may_connect(held: BrokerHandle) -> None:
    shared = subscribe_as_bridge(held, "$share/bridge//devices/+/events/+")
    try:
        device = new_id()
        key = register_device_key(held.keys_dir, device)
        assert accepted(try_connect(held, device, token(held, key)))
        other = register_device_key(held.keys_dir, new_id())
        assert not accepted(try_connect(held, device, token(held, other)))
    finally:
        close(shared)


def test_a_bridge_that_falls_behind_by_more_than_a_thousand_messages_loses_none(
        tmp_path: Path) -> None:
    """Mosquitto's default drops QoS 1 messages past 1000 queued for one client, after it
    acknowledged them to the device; the broker we run queues them all."""
    keys = tmp_path / "keys"
    keys.mkdir()
    password = secrets.token_urlsafe(12)
    with Broker(tmp_path / "broker", audience="pitbox-queue", keys_dir=keys,
                accounts={"bridge": password}) as b:
        handle = BrokerHandle(b, keys, "pitbox-queue", {"bridge": password}, "bridge", password)
        bridge_id = new_id("bridge")
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600

        def bridge_client() -> tuple[mqtt.Client, list[bytes]]:
            got: list[bytes] = []
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=bridge_id,
                            protocol=mqtt.MQTTv5)
            c.username_pw_set("bridge", password)
            c.on_message = lambda _c, _u, m: got.append(m.payload)
            c.connect(b.host, b.port, clean_start=False, properties=props)
            return c, got

        first, _ = bridge_client()
        suback = threading.Event()
        first.on_subscribe = lambda *_: suback.set()
        first.loop_start()
        first.subscribe("$share/bridge//devices/+/events/+", qos=1)
        assert suback.wait(10)
        close(first)  # the bridge is down: the broker queues its share in the session
        device = new_id()
        key = register_device_key(keys, device)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        pub.username_pw_set("unused", token(handle, key))
        pub.connect(b.host, b.port)
        pub.loop_start()
        sent = [pub.publish(f"/devices/{device}/events/sample", b"%d" % i, qos=1)
                for i in range(1200)]
        for info in sent:
            info.wait_for_publish(10)
        assert all(info.is_published() for info in sent)  # every one PUBACKed to the device
        close(pub)
        again, got = bridge_client()
        again.loop_start()
        deadline = time.monotonic() + 20
        while len(got) < 1200 and time.monotonic() < deadline:
            time.sleep(0.05)
        close(again)
    assert sorted(int(p) for p in got) == list(range(1200))
