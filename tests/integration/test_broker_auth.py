"""The auth plugin in a real Mosquitto: who may connect, and what each client may touch.

Devices log in with RS256 JWTs minted here (client id = device id, password = token); the
bridge logs in with its service account. Every wait is bounded (5 s) and every client made
here is disconnected here. The cases are those listed in docs' "Cases to test".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.integration.broker_fixtures import BrokerHandle, new_rsa_key, register_device_key

WAIT_S = 5.0
SUBACK_FAILURE = 0x80  # MQTT 3.1.1 SUBACK "Failure"


def new_id(stem: str = "dev") -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def token(broker: BrokerHandle, private_pem: bytes, **overrides: Any) -> str:
    """A device JWT: 20-minute lifetime, right audience, unless overridden."""
    now = int(time.time())
    claims: dict[str, Any] = {"iat": now, "exp": now + 1200, "aud": broker.audience}
    claims.update(overrides)
    return jwt.encode(claims, private_pem, algorithm="RS256")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
                    ) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def good_claims(broker: BrokerHandle) -> dict[str, Any]:
    now = int(time.time())
    return {"iat": now, "exp": now + 1200, "aud": broker.audience}


def try_connect(broker: BrokerHandle, client_id: str, password: str | None, *,
                username: str = "unused", protocol: MQTTProtocolVersion = mqtt.MQTTv311
                ) -> ReasonCode | None:
    """Connect once, return the CONNACK reason code (None: closed without one), hang up.

    Drives paho's loop by hand, so a refusal never triggers paho's reconnect thread.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.username_pw_set(username, password)
    result: list[ReasonCode | None] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: result.append(rc)
    client.on_disconnect = lambda _c, _u, _f, _rc, _p: result.append(None)
    client.connect(broker.host, broker.port, keepalive=30)
    deadline = time.monotonic() + WAIT_S
    while not result and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    if result and result[0] is not None and not result[0].is_failure:
        client.disconnect()
        client.loop(timeout=0.05)
    hang_up(client)
    assert result, f"no CONNACK within {WAIT_S} s"
    return result[0]


def hang_up(client: mqtt.Client) -> None:
    """Close the socket of a client driven by hand (the broker may have closed it already)."""
    sock = client.socket()
    if sock is not None:
        sock.close()


def accepted(rc: ReasonCode | None) -> bool:
    return rc is not None and not rc.is_failure


class Session:
    """A live client on paho's own thread, recording what happens to it."""

    def __init__(self, broker: BrokerHandle, client_id: str, password: str, *,
                 username: str = "unused", protocol: MQTTProtocolVersion = mqtt.MQTTv311,
                 clean_session: bool = True) -> None:
        kwargs: dict[str, Any] = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean_session}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, **kwargs)
        self.client.username_pw_set(username, password)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnects = 0
        self._connack = threading.Event()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._suback = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self._connack.wait(WAIT_S), "no CONNACK"
        assert self.connack is not None and not self.connack.is_failure, str(self.connack)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connack = rc
        self._connack.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self.disconnects += 1

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        with self._suback:
            self._subacks[mid] = codes
            self._suback.notify_all()

    def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe and return the granted QoS or failure code from the SUBACK."""
        _, mid = self.client.subscribe(topic, qos)
        assert mid is not None, f"subscribe {topic} was not sent"
        with self._suback:
            assert self._suback.wait_for(lambda: mid in self._subacks, WAIT_S), "no SUBACK"
            return int(self._subacks[mid][0].value)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the PUBACK."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def expect(self, payload: bytes) -> str:
        """Wait for ``payload``; fail if anything else arrives first. Returns its topic."""
        topic, got = self.messages.get(timeout=WAIT_S)
        assert got == payload, f"got {got!r} on {topic} before {payload!r}"
        return topic

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    """Collects sessions so each test's clients are closed even when it fails."""
    opened: list[Session] = []
    yield opened
    for s in opened:
        s.close()


@pytest.fixture
def bridge(broker: BrokerHandle, sessions: list[Session]) -> Session:
    """The bridge's view: MQTT v5, one shared subscription to every device's events."""
    s = Session(broker, new_id("bridge"), broker.bridge_password,
                username=broker.bridge_username, protocol=mqtt.MQTTv5)
    sessions.append(s)
    assert s.subscribe(f"$share/bridge/{broker.prefix}/+/events/#") == 1
    return s


def device(broker: BrokerHandle, sessions: list[Session], **kwargs: Any) -> tuple[str, Session]:
    device_id = new_id()
    s = Session(broker, device_id, token(broker, register_device_key(broker.keys_dir, device_id)),
                **kwargs)
    sessions.append(s)
    return device_id, s


# --- who may connect -------------------------------------------------------------------------

def test_good_token_is_accepted(broker: BrokerHandle) -> None:
    device_id = new_id()
    key = register_device_key(broker.keys_dir, device_id)
    rc = try_connect(broker, device_id, token(broker, key))
    assert rc is not None and rc.value == 0
    assert accepted(try_connect(broker, device_id, token(broker, key), protocol=mqtt.MQTTv5))


def test_full_iot_core_client_id_is_accepted_only_for_our_project(broker: BrokerHandle) -> None:
    device_id = new_id()
    key = register_device_key(broker.keys_dir, device_id)
    full = f"projects/{broker.audience}/locations/europe-west1/registries/teams/devices/{device_id}"
    other = full.replace(broker.audience, "someone-else", 1)
    assert accepted(try_connect(broker, full, token(broker, key)))
    assert not accepted(try_connect(broker, other, token(broker, key)))


@pytest.mark.parametrize("claims", [
    pytest.param({"iat": -1200, "exp": -60}, id="expired"),
    pytest.param({"aud": "other-project"}, id="wrong-aud"),
    pytest.param({"aud": ["pitbox-test"]}, id="aud-as-list"),
    pytest.param({"exp": 48 * 3600}, id="48h-lifetime"),
    pytest.param({"iat": 3600, "exp": 3600 + 1200}, id="iat-1h-in-future"),
    pytest.param({"exp": "later"}, id="exp-not-a-number"),
    pytest.param({"iat": None}, id="no-iat"),
])
def test_bad_claims_are_refused(broker: BrokerHandle, claims: dict[str, Any]) -> None:
    device_id = new_id()
    key = register_device_key(broker.keys_dir, device_id)
    now = int(time.time())
    # Offsets are relative to now; None drops the claim; strings and lists stay as they are.
    full = good_claims(broker)
    for name, value in claims.items():
        if value is None:
            full.pop(name)
        else:
            full[name] = now + value if isinstance(value, int) else value
    assert not accepted(try_connect(broker, device_id, jwt.encode(full, key, algorithm="RS256")))


def test_token_signed_by_unregistered_key_is_refused(broker: BrokerHandle) -> None:
    device_id = new_id()
    register_device_key(broker.keys_dir, device_id)
    stranger, _ = new_rsa_key()
    assert not accepted(try_connect(broker, device_id, token(broker, stranger)))


def test_another_devices_valid_token_is_refused(broker: BrokerHandle) -> None:
    victim, thief = new_id(), new_id()
    register_device_key(broker.keys_dir, victim)
    thief_key = register_device_key(broker.keys_dir, thief)
    assert not accepted(try_connect(broker, victim, token(broker, thief_key)))


def test_hs256_with_the_public_key_as_secret_is_refused(broker: BrokerHandle) -> None:
    device_id = new_id()
    register_device_key(broker.keys_dir, device_id)
    public_pem = (broker.keys_dir / f"{device_id}.pem").read_bytes()
    forged = hand_made_token({"alg": "HS256", "typ": "JWT"}, good_claims(broker),
                             lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())
    assert not accepted(try_connect(broker, device_id, forged))


def test_alg_none_is_refused(broker: BrokerHandle) -> None:
    device_id = new_id()
    register_device_key(broker.keys_dir, device_id)
    unsigned = hand_made_token({"alg": "none", "typ": "JWT"}, good_claims(broker), lambda _: b"")
    assert not accepted(try_connect(broker, device_id, unsigned))
    assert not accepted(try_connect(broker, device_id, unsigned + "c2lnbmF0dXJl"))


@pytest.mark.parametrize("password", [
    pytest.param("not-a-jwt", id="garbage"),
    pytest.param("a.b.c", id="three-garbage-parts"),
    pytest.param("x" * 9000, id="over-8kb"),
    pytest.param(None, id="no-password"),
])
def test_garbage_passwords_are_refused(broker: BrokerHandle, password: str | None) -> None:
    device_id = new_id()
    register_device_key(broker.keys_dir, device_id)
    assert not accepted(try_connect(broker, device_id, password))


def test_unknown_client_id_is_refused(broker: BrokerHandle) -> None:
    stranger, _ = new_rsa_key()
    assert not accepted(try_connect(broker, new_id("ghost"), token(broker, stranger)))


@pytest.mark.parametrize("client_id", ["dev+one", "dev#one", "dev/one", "goog-box", "a..b-c"])
def test_client_ids_outside_the_safe_set_are_refused_even_with_a_key(
        broker: BrokerHandle, client_id: str) -> None:
    path = broker.keys_dir / f"{client_id}.pem"
    if "/" in client_id:
        path.parent.mkdir(exist_ok=True)
    key = register_device_key(broker.keys_dir, client_id)
    assert not accepted(try_connect(broker, client_id, token(broker, key)))


def test_client_id_cannot_escape_the_keys_directory(broker: BrokerHandle) -> None:
    # A valid key planted one level above keys_dir: "../<name>" must not find it.
    name = new_id("escape")
    key = register_device_key(broker.keys_dir.parent, name)
    assert not accepted(try_connect(broker, f"../{name}", token(broker, key)))
    full = f"projects/{broker.audience}/locations/r1/registries/reg/devices/../{name}"
    assert not accepted(try_connect(broker, full, token(broker, key)))


def test_deleting_the_key_revokes_the_device(broker: BrokerHandle) -> None:
    device_id = new_id()
    key = register_device_key(broker.keys_dir, device_id)
    assert accepted(try_connect(broker, device_id, token(broker, key)))
    (broker.keys_dir / f"{device_id}.pem").unlink()
    assert not accepted(try_connect(broker, device_id, token(broker, key)))


def test_bridge_account_needs_its_password(broker: BrokerHandle) -> None:
    user = broker.bridge_username
    assert accepted(try_connect(broker, new_id("bridge"), broker.bridge_password, username=user,
                                protocol=mqtt.MQTTv5))
    assert not accepted(try_connect(broker, new_id("bridge"), "wrong", username=user))
    assert not accepted(try_connect(broker, new_id("bridge"), None, username=user))


def test_account_username_never_falls_back_to_device_login(broker: BrokerHandle) -> None:
    device_id = new_id()
    key = register_device_key(broker.keys_dir, device_id)
    assert not accepted(try_connect(broker, device_id, token(broker, key),
                                    username=broker.bridge_username))


# --- what a connected client may touch -------------------------------------------------------

def test_device_subscriptions_outside_its_own_topics_fail(
        broker: BrokerHandle, sessions: list[Session]) -> None:
    device_id, dev = device(broker, sessions)
    p = broker.prefix
    assert dev.subscribe(f"{p}/{device_id}/config") == 1
    assert dev.subscribe(f"{p}/{device_id}/commands/#") == 1
    for topic in (f"{p}/other-dev/config", "#", f"{p}/+/config", f"{p}/#",
                  f"{p}/{device_id}/#", f"{p}/{device_id}/events", "$SYS/#",
                  f"$share/g/{p}/{device_id}/config"):
        assert dev.subscribe(topic) == SUBACK_FAILURE, topic


def test_device_publish_to_another_devices_topic_is_dropped(
        broker: BrokerHandle, sessions: list[Session], bridge: Session) -> None:
    device_id, dev = device(broker, sessions)
    victim = new_id()
    dev.publish(f"{broker.prefix}/{victim}/events/lap", b"forged")  # PUBACK, but dropped
    dev.publish(f"{broker.prefix}/{victim}/events", b"forged")
    dev.publish(f"{broker.prefix}/{device_id}/events/lap", b"own-lap")
    dev.publish(f"{broker.prefix}/{device_id}/events", b"own-event")
    # Same connection, QoS 1: a forged message would have arrived before the own ones.
    assert bridge.expect(b"own-lap") == f"{broker.prefix}/{device_id}/events/lap"
    assert bridge.expect(b"own-event") == f"{broker.prefix}/{device_id}/events"


def test_bridge_shared_subscription_gets_every_devices_events(
        broker: BrokerHandle, sessions: list[Session], bridge: Session) -> None:
    (id_a, a), (id_b, b) = device(broker, sessions), device(broker, sessions)
    a.publish(f"{broker.prefix}/{id_a}/events/lap", b"from-a")
    assert bridge.expect(b"from-a").startswith(f"{broker.prefix}/{id_a}/")
    b.publish(f"{broker.prefix}/{id_b}/events/stint", b"from-b")
    assert bridge.expect(b"from-b").startswith(f"{broker.prefix}/{id_b}/")


def test_bridge_writes_config_and_commands_only_to_that_device(
        broker: BrokerHandle, sessions: list[Session], bridge: Session) -> None:
    (id_a, a), (id_b, b) = device(broker, sessions), device(broker, sessions)
    p = broker.prefix
    for dev, dev_id in ((a, id_a), (b, id_b)):
        assert dev.subscribe(f"{p}/{dev_id}/config") == 1
        assert dev.subscribe(f"{p}/{dev_id}/commands/#") == 1
    bridge.publish(f"{p}/{id_a}/config", b"cfg-a")
    bridge.publish(f"{p}/{id_a}/commands/pit", b"cmd-a")
    bridge.publish(f"{p}/{id_b}/config", b"cfg-b")
    assert a.expect(b"cfg-a") == f"{p}/{id_a}/config"
    assert a.expect(b"cmd-a") == f"{p}/{id_a}/commands/pit"
    assert b.expect(b"cfg-b") == f"{p}/{id_b}/config"
    assert a.messages.empty()


def test_only_service_accounts_use_the_bridges_presence_topics(
        broker: BrokerHandle, sessions: list[Session], bridge: Session) -> None:
    """The bridges' presence and takeover markers (pitbox/bridges/...) are theirs alone."""
    group = new_id("g")
    assert bridge.subscribe(f"pitbox/bridges/{group}/+") == 1
    assert bridge.subscribe(f"pitbox/bridges/{group}/drain/b1") == 1
    bridge.publish(f"pitbox/bridges/{group}/b1", b"online")
    bridge.publish(f"pitbox/bridges/{group}/drain/b1", b"marker")
    assert bridge.expect(b"online") == f"pitbox/bridges/{group}/b1"
    assert bridge.expect(b"marker") == f"pitbox/bridges/{group}/drain/b1"
    device_id, dev = device(broker, sessions)
    for topic in (f"pitbox/bridges/{group}/+", "pitbox/bridges/#", "pitbox/#"):
        assert dev.subscribe(topic) == SUBACK_FAILURE, topic
    dev.publish(f"pitbox/bridges/{group}/b1", b"offline")  # PUBACK, but dropped
    dev.publish(f"{broker.prefix}/{device_id}/events/lap", b"after")
    assert bridge.expect(b"after").startswith(f"{broker.prefix}/{device_id}/")  # nothing before


@pytest.mark.parametrize("live_clean", [True, False])
@pytest.mark.parametrize("attacker_clean", [True, False])
def test_failed_login_with_a_live_client_id_leaves_the_session_alone(
        broker: BrokerHandle, sessions: list[Session], bridge: Session,
        live_clean: bool, attacker_clean: bool) -> None:
    device_id, live = device(broker, sessions, clean_session=live_clean)
    stranger, _ = new_rsa_key()
    attacker = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                           protocol=mqtt.MQTTv311, clean_session=attacker_clean)
    attacker.username_pw_set("unused", token(broker, stranger))
    refused: list[ReasonCode] = []
    attacker.on_connect = lambda _c, _u, _f, rc, _p: refused.append(rc)
    attacker.connect(broker.host, broker.port, keepalive=30)
    deadline = time.monotonic() + WAIT_S
    while not refused and time.monotonic() < deadline:
        attacker.loop(timeout=0.05)
    hang_up(attacker)
    assert refused and refused[0].is_failure
    live.publish(f"{broker.prefix}/{device_id}/events/lap", b"still-here")
    assert bridge.expect(b"still-here")
    assert live.disconnects == 0 and live.client.is_connected()


def test_refusals_are_logged_with_the_reason(broker: BrokerHandle) -> None:
    device_id = new_id()
    register_device_key(broker.keys_dir, device_id)
    assert not accepted(try_connect(broker, device_id, "not-a-jwt"))
    log = Path(broker.broker.log_path).read_text()
    assert f"pitbox_auth: bad token for device {device_id}" in log
