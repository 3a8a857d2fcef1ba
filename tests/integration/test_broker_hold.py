"""`hold_devices`: the broker refuses devices until the bridge's shared subscription exists.

Mosquitto 2.0 does not restore shared subscriptions from persistence: after a restart, a device
let in before the bridge re-subscribed would get PUBACKs for messages routed to nobody. Held
off, it keeps them in its outbox (tests/faults checks that end to end)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

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
