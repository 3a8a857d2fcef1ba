"""The MQTT publisher and pump against the real broker: renewal by reconnect, the clock gate,
config/commands subscriptions, the state topic, jittered retries, and TLS with our own CA."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import jwt
import msgpack
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.broker.run import Broker, free_port
from gateway.errors import ClockNotSynced
from gateway.outbox import Outbox
from gateway.uplink import auth, topics
from gateway.uplink.backoff import Backoff
from gateway.uplink.mqtt import MqttPublisher
from gateway.uplink.pump import Pump
from tests.faults.harness import Recorder, register, tls_files, wait_until
from tests.integration.broker_fixtures import BrokerHandle
from tests.unit import records_factory as rf


def new_device(broker: BrokerHandle) -> tuple[str, bytes]:
    device_id = f"up-{uuid.uuid4().hex[:8]}"
    return device_id, register(broker.keys_dir, device_id)


def minter(key: bytes, audience: str, lifetime_s: int, counter: list[int] | None = None):  # type: ignore[no-untyped-def]
    def token() -> str:
        if counter is not None:
            counter.append(1)
        return auth.mint(key, time.time(), audience, lifetime_s, synced=lambda: False)
    return token


def publisher_for(broker: BrokerHandle, device_id: str, token, **kw) -> MqttPublisher:  # type: ignore[no-untyped-def]
    return MqttPublisher(host=broker.host, port=broker.port, client_id=device_id, token=token,
                         **kw)


def test_an_expiring_token_is_renewed_by_a_clean_reconnect_and_nothing_is_lost(
        broker: BrokerHandle) -> None:
    device_id, key = new_device(broker)
    minted: list[int] = []
    pub = publisher_for(broker, device_id, minter(key, broker.audience, 3, minted),
                        token_lifetime_s=3, refresh_margin_s=1.2)
    rec = Recorder(broker.host, broker.port, broker.bridge_username, broker.bridge_password)

    async def run() -> int:
        pub.connect()
        await asyncio.wait_for(pub.connected.wait(), 10)
        sent = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + 7.0  # longer than two token lifetimes
        while loop.time() < end:
            await asyncio.wait_for(pub.publish(f"/devices/{device_id}/events/sample",
                                               sent.to_bytes(4, "big")), 10)
            sent += 1
            await asyncio.sleep(0.01)
        pub.close()
        return sent

    try:
        sent = asyncio.run(run())
        got = lambda: sorted({int.from_bytes(p, "big") for t, p, _ in rec.messages
                              if t.startswith(f"/devices/{device_id}/")})
        assert wait_until(lambda: got() == list(range(sent)), 5), "a PUBACKed message was lost"
    finally:
        rec.close()
    assert pub.stats["renewals"] >= 2 and pub.stats["connects"] >= 3
    assert len(minted) == pub.stats["connects"]  # every connection had a fresh token
    assert pub.stats["refused"] == 0  # renewed before the broker would refuse it


def test_no_token_is_minted_while_the_clock_is_insane_then_it_connects(
        broker: BrokerHandle) -> None:
    device_id, key = new_device(broker)
    clock = {"now": 86_400.0}  # a Pi without RTC believes it is 1970

    def token() -> str:
        return auth.mint(key, clock["now"], broker.audience, 600, synced=lambda: False)

    pub = publisher_for(broker, device_id, token)

    async def run() -> tuple[bool, int]:
        pub.connect()
        await asyncio.sleep(2.5)
        early = pub.connected.is_set()
        waits = pub.stats["clock_waits"]
        clock["now"] = time.time()  # NTP arrived
        await asyncio.wait_for(pub.connected.wait(), 10)
        pub.close()
        return early, waits

    early, waits = asyncio.run(run())
    assert not early and waits >= 2
    assert pub.stats["tokens"] == 1 and pub.stats["refused"] == 0 and pub.stats["unreachable"] == 0
    with pytest.raises(ClockNotSynced):
        auth.mint(key, 86_400.0, broker.audience, 600, synced=lambda: False)


def test_config_and_commands_reach_the_device_and_state_goes_at_most_every_10_s(
        broker: BrokerHandle, tmp_path: Path) -> None:
    device_id, key = new_device(broker)
    pub = publisher_for(broker, device_id, minter(key, broker.audience, 600),
                        subscribe=(topics.config("/devices", device_id),
                                   topics.commands("/devices", device_id)))
    box = Outbox(tmp_path / "o.sqlite")
    pump = Pump(box, pub, device=device_id, prefix="/devices", wall_ns=time.time_ns,
                state=lambda: {"outbox_rows": box.pending()}, state_every_s=1.0)  # asks 1 s, gets 10 s
    rec = Recorder(broker.host, broker.port, broker.bridge_username, broker.bridge_password)
    cloud = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="cloud-cfg")
    cloud.username_pw_set(broker.bridge_username, broker.bridge_password)
    cloud.connect(broker.host, broker.port)
    cloud.loop_start()

    async def run() -> None:
        pub.connect()
        task = asyncio.create_task(pump.run())
        await asyncio.wait_for(pub.connected.wait(), 10)
        await asyncio.sleep(0.5)  # SUBACKs
        cloud.publish(topics.config("/devices", device_id), b'{"sample_hz": 5}', qos=1).wait_for_publish(5)
        cloud.publish(f"/devices/{device_id}/commands/reboot", b"now", qos=1).wait_for_publish(5)
        box.append([rf.lap(1)])
        box.flush()
        pump.wakeup.set()
        await asyncio.sleep(3.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pub.close()

    try:
        asyncio.run(run())
        assert wait_until(lambda: len(rec.states()) >= 1, 5)
        time.sleep(0.3)
        states = rec.states()
    finally:
        rec.close()
        cloud.loop_stop()
        cloud.disconnect()
    assert pub.last_config == b'{"sample_hz": 5}'
    assert list(pub.commands) == [(f"/devices/{device_id}/commands/reboot", b"now")]
    assert len(states) == 1 and pump.state_messages == 1  # 3 s of running: one state, not three
    body = msgpack.unpackb(states[0])
    assert body["device"] == device_id and "outbox_rows" in body
    assert pump.acked_records == 1


def test_an_unreachable_broker_is_retried_with_jittered_backoff(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    waits: list[float] = []

    class Recording(Backoff):
        def delay(self, attempt: int, rng: random.Random) -> float:
            d = Backoff.delay(self, attempt, rng)
            waits.append(d)
            return d

    pub = MqttPublisher(host="127.0.0.1", port=port, client_id="nobody-home",
                        token=lambda: "x", backoff=Recording(min_s=0.05, max_s=0.4),
                        rng=random.Random(5))

    async def run() -> None:
        pub.connect()
        await asyncio.sleep(2.0)
        pub.close()

    asyncio.run(run())
    assert pub.stats["unreachable"] >= 5 and not pub.connected.is_set()
    assert all(0.05 <= w <= 0.4 for w in waits)
    assert len({round(w, 4) for w in waits}) == len(waits)  # jittered, not a fixed ladder


def test_tls_with_the_configured_ca_connects_and_without_it_does_not(tmp_path: Path) -> None:
    ca, cert, key_file = tls_files(tmp_path)
    keys = tmp_path / "keys"
    keys.mkdir()
    device_id = "tls-dev-01"
    key = register(keys, device_id)
    with Broker(tmp_path / "work", audience="tls-aud", keys_dir=keys, accounts={},
                tls=(cert, key_file)) as b:
        token = lambda: jwt.encode({"iat": int(time.time()), "exp": int(time.time()) + 600,
                                    "aud": "tls-aud"}, key, algorithm="RS256")
        good = MqttPublisher(host=b.host, port=b.port, client_id=device_id, token=token,
                             tls=True, ca_file=str(ca))
        system_cas = MqttPublisher(host=b.host, port=b.port, client_id=device_id, token=token,
                                   tls=True, ca_file="", backoff=Backoff(0.1, 0.2))

        async def run() -> bool:
            system_cas.connect()
            await asyncio.sleep(1.5)
            refused = not system_cas.connected.is_set()
            system_cas.close()
            good.connect()
            await asyncio.wait_for(good.connected.wait(), 10)
            await asyncio.wait_for(good.publish(f"/devices/{device_id}/events/lap", b"x"), 5)
            good.close()
            return refused

        assert asyncio.run(run())
    assert system_cas.stats["unreachable"] >= 1 and "certificate" in system_cas.last_error.lower()
    assert good.stats["published"] == 1
