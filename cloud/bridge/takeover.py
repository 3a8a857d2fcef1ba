"""Thin shells for redundancy: drain a dead peer's session into this bridge (`Takeover`, one
MQTT connection), and decide when (`Redundancy`, fed by the presence messages).

Threads: paho's own network thread (`loop_start`, no reconnect: a lost connection ends the
takeover and `presence.Peers` decides whether to try again). Messages go to the bridge's
writer loop through `deliver` (the same queue, filing and idempotent writes as the bridge's
own), and are acknowledged on this connection after their commit (`delivery.Conn`).

Steps, as measured against Mosquitto 2.0.11 (see presence.py):
1. CONNECT as the peer, `clean_start=False`: the broker re-sends the peer's unacknowledged
   in-flight messages (DUP set), then its queued ones.
2. UNSUBSCRIBE the peer's subscriptions, so no new message joins its session (the survivors'
   share grows instead); SUBSCRIBE to `drain_topic` and PUBLISH a marker with a fresh token
   there. The broker queues it behind everything the session already holds, so our marker
   coming back means nothing more is queued.
3. When the marker is back and every message delivered here is acknowledged: clear the
   peer's retained presence and DISCONNECT with Session Expiry 0, which ends the session.
If the peer connects meanwhile, the broker hands it the session and drops this connection
(Mosquitto 2.0.11 sends no will and no reason code then); whoever holds the session carries
on, and messages not acknowledged here are redelivered to it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.bridge.delivery import Conn, Delivery
from cloud.bridge.presence import (
    CLEARED,
    PRESENCE_ROOT,
    Peers,
    drain_topic,
    peer_of,
    presence_topic,
)

log = logging.getLogger("pitbox.bridge")


@dataclass(frozen=True, slots=True)
class Login:
    """How a takeover connects: the bridge's broker, account and session settings."""

    host: str
    port: int
    username: str
    password: str
    session_expiry_s: int
    receive_max: int
    keepalive_s: int


class Redundancy:
    """This instance's part in its group: the peers' presence (fed from paho's thread by
    `seen`) and at most one takeover at a time (run from the writer loop by `tend`; the
    bridge's queue has room for one more in-flight window). Counts into `stats`:
    `takeovers`, `takeovers_drained`, `takeover_messages`."""

    def __init__(self, me: str, group: str, login: Login, *, unsubscribe: list[str],
                 deliver: Callable[[Delivery], bool], grace_ns: int, retry_ns: int,
                 mono: Callable[[], int], stats: Counter[str]) -> None:
        self.group, self.login = group, login
        self.peers = Peers(me, grace_ns=grace_ns, retry_ns=retry_ns)
        self._unsubscribe, self._deliver = unsubscribe, deliver
        self._mono, self._stats = mono, stats
        self._lock = threading.Lock()  # Peers: written by paho's thread, read by the writer
        self._takeover: Takeover | None = None

    def seen(self, topic: str, payload: bytes) -> bool:
        """Note a presence message; False if `topic` is not one (it is data)."""
        peer = peer_of(self.group, topic)
        if peer is None:
            return False
        with self._lock:
            self.peers.seen(peer, payload, self._mono())
        return True

    def tend(self, connected: bool) -> None:
        """Reap a finished takeover; start the next one that is ours."""
        if self._takeover is not None and self._takeover.finished.is_set():
            self._reap(self._takeover)
        if self._takeover is not None or not connected:
            return
        with self._lock:
            due = self.peers.due(self._mono())
        if due:
            self._stats["takeovers"] += 1
            self._takeover = Takeover(due[0], group=self.group, login=self.login,
                                      unsubscribe=self._unsubscribe, deliver=self._deliver)
            self._takeover.start()

    def stop(self) -> None:
        """Stop a running takeover; its peer's session stays for the next survivor. One that
        has drained its peer but not reached `finished` yet is counted as drained."""
        if self._takeover is not None:
            self._reap(self._takeover)

    def _reap(self, t: Takeover) -> None:
        t.stop()
        self._takeover = None
        self._stats["takeover_messages"] += t.messages
        with self._lock:
            if t.state == "drained":
                self._stats["takeovers_drained"] += 1
                self.peers.drained(t.peer)
            else:
                self.peers.failed(t.peer, self._mono())


class Takeover:
    """One dead peer's session, drained. `state`: `connecting`, `draining`, `clearing`,
    `drained` (its session is gone) or `failed` (connection lost or refused, bridge stopping:
    the session stays for the next attempt). `finished` is set in the last two."""

    def __init__(self, peer: str, *, group: str, login: Login, unsubscribe: list[str],
                 deliver: Callable[[Delivery], bool]) -> None:
        self.peer, self.group, self.login = peer, group, login
        self.state = "connecting"
        self.session_present = False
        self.finished = threading.Event()
        self._unsubscribe = unsubscribe
        self._deliver = deliver
        self._marker = drain_topic(group, peer)
        self._token = secrets.token_hex(8).encode()  # an older attempt's marker is not ours
        self._marker_back = False
        self._clear_mid = -1
        self._pubacked: set[int] = set()  # our own QoS 1 publishes the broker acknowledged
        self._received = self._acked = 0
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=peer, protocol=mqtt.MQTTv5,
                             manual_ack=True, reconnect_on_failure=False)
        client.username_pw_set(login.username, login.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_unsubscribe = self._on_unsubscribe
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.conn = Conn(client, on_ack=self._on_ack)

    @property
    def messages(self) -> int:
        """Messages of the peer's session delivered here so far."""
        return self._received

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.login.session_expiry_s  # if we die too, it waits
        props.ReceiveMaximum = self.login.receive_max
        log.warning("bridge: taking over the session of %r, which went offline", self.peer)
        self.conn.client.connect_async(self.login.host, self.login.port,
                                       keepalive=self.login.keepalive_s, clean_start=False,
                                       properties=props)
        self.conn.client.loop_start()

    def stop(self) -> None:
        """End the connection and join its thread; an unfinished drain keeps the session."""
        if not self.finished.is_set():
            self._fail("the bridge is stopping")
            self.conn.client.disconnect()
        self.conn.client.loop_stop()

    # -- paho's network thread of this connection --------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, props: Properties | None) -> None:
        if reason.is_failure:
            self._fail(f"the broker refused the login: {reason}")
            client.disconnect()
            return
        self.conn.renew()
        self.session_present = flags.session_present
        self.state = "draining"
        log.info("bridge: takeover of %r connected (%s)", self.peer,
                 "its session resumed" if flags.session_present else "it had no session left")
        client.unsubscribe(self._unsubscribe)

    def _on_unsubscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                        reasons: list[ReasonCode], props: Properties | None) -> None:
        client.subscribe(self._marker, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], props: Properties | None) -> None:
        if any(r.is_failure for r in reasons):
            self._fail(f"the broker refused {self._marker!r}: {reasons}")
            client.disconnect()
            return
        client.publish(self._marker, self._token, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith(PRESENCE_ROOT + "/"):  # the peer's presence view, a marker
            client.ack(message.mid, message.qos)
            if message.topic == self._marker and message.payload == self._token:
                self._marker_back = True
                self._maybe_done()
            return
        with self._lock:
            self._received += 1
        if not self._deliver(self.conn.delivery(message)):
            self._fail("no room in the bridge's queue")  # unacked: the session keeps it
            client.disconnect()

    def _on_ack(self) -> None:  # the writer thread, after a commit
        with self._lock:
            self._acked += 1
        self._maybe_done()

    def _maybe_done(self) -> None:
        with self._lock:
            done = (self.state == "draining" and self._marker_back
                    and self._acked >= self._received)
            if done:
                self.state = "clearing"
        if done:  # an empty retained message deletes the peer's `offline`
            info = self.conn.client.publish(presence_topic(self.group, self.peer), CLEARED,
                                            qos=1, retain=True)
            self._cleared(sent=info.mid)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    props: Properties | None) -> None:
        self._cleared(acked=mid)

    def _cleared(self, *, sent: int | None = None, acked: int | None = None) -> None:
        """The PUBACK of the clearing message may come before `publish` has returned its mid
        to the writer thread: whichever side comes second ends the session."""
        with self._lock:
            if sent is not None:
                self._clear_mid = sent
            if acked is not None:
                self._pubacked.add(acked)
            done = self.state == "clearing" and self._clear_mid in self._pubacked
            if done:
                self.state = "drained"
        if done:
            end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            end.SessionExpiryInterval = 0  # the peer's session ends with this connection
            log.warning("bridge: drained the session of %r (%d messages) and ended it",
                        self.peer, self._received)
            self.conn.client.disconnect(properties=end)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, props: Properties | None) -> None:
        self.conn.renew()
        if self.state != "drained":
            self._fail(f"connection lost ({reason}); the peer may be back")
        self.finished.set()

    def _fail(self, why: str) -> None:
        with self._lock:
            if self.state in ("drained", "failed"):
                return
            self.state = "failed"
        log.warning("bridge: takeover of %r stopped: %s", self.peer, why)
        self.finished.set()
