"""The MQTT connection to the broker (paho-mqtt 2.x), one per device.

Threads: a supervisor thread of ours runs the reconnect loop you can read below
(`_supervise`): mint a JWT, `connect()` (blocking, off the asyncio loop), hand the socket to
paho's own network thread (`loop_start`, with paho's reconnect switched off), wait until the
session ends or the token is due for renewal, and then either reconnect at once (renewal: a
clean DISCONNECT first) or after a capped, jittered backoff (`backoff.Backoff`).
Callbacks are handed back to the asyncio loop with `call_soon_threadsafe`, so `publish` is
awaited on the loop and returns only after the broker's PUBACK.

paho keeps unacknowledged messages in memory and resends them after a reconnect, but they die
with the process: the outbox keeps every row until `publish` returned. A broker that keeps the
connection (answers pings) but acknowledges nothing for `ack_timeout_s` while publishes wait
gets a clean reconnect, and paho resends them on the new connection. No token is minted
while the wall clock is not sane (`ClockNotSynced`): the supervisor polls the clock and the
outbox fills meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import jwt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.errors import ClockNotSynced, UplinkError
from gateway.uplink.backoff import Backoff

log = logging.getLogger("pitbox.uplink")

CLOCK_POLL_S = 1.0
SAY_AGAIN_S = 60.0  # repeated warnings (clock, refusals) at most once a minute


class MqttPublisher:
    """`connect()` then `await publish(topic, payload)` (QoS 1, returns after PUBACK).

    `token()` mints the password (a JWT valid `token_lifetime_s`); the connection is renewed
    `refresh_margin_s` before it expires (default: a tenth of the lifetime, at most 5 min).
    `subscribe` topics (config, commands/#) are subscribed at QoS 1 on every connect; what
    arrives is kept in `last_config` / `commands`.
    """

    def __init__(self, *, host: str, port: int, client_id: str, token: Callable[[], str],
                 inflight: int = 20, tls: bool = False, ca_file: str = "",
                 keepalive_s: int = 60, token_lifetime_s: float = 3600.0,
                 refresh_margin_s: float | None = None, backoff: Backoff | None = None,
                 subscribe: Sequence[str] = (), rng: random.Random | None = None,
                 ack_timeout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.port = host, port
        self._token = token
        self.token_lifetime_s = token_lifetime_s
        self.refresh_margin_s = (min(300.0, token_lifetime_s / 10) if refresh_margin_s is None
                                 else refresh_margin_s)
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._clock = clock
        self.ack_timeout_s = ack_timeout_s
        self._subscribe = tuple(subscribe)
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv311, clean_session=True,
                                   reconnect_on_failure=False)  # our loop decides when
        self._client.max_inflight_messages_set(inflight)
        if tls:
            # ca_file "" = the system's CAs; the broker's name is checked either way.
            self._client.tls_set(ca_certs=ca_file or None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._keepalive = keepalive_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()  # PUBACKs that beat the registration of their future
        self._sent_at: dict[int, float] = {}  # mid -> when it was (re)sent, until its PUBACK
        self._progress_at = 0.0  # the last PUBACK or CONNACK
        self._stop = threading.Event()
        self._ended = threading.Event()  # the current session is over
        self._up = False
        self._supervisor: threading.Thread | None = None
        self._said: dict[str, float] = {}
        self.connected = asyncio.Event()
        self.session = 0  # counts CONNACKs: a new value means a new connection
        self.last_error = ""
        self.last_config: bytes | None = None
        self.commands: deque[tuple[str, bytes]] = deque(maxlen=100)
        self.stats: Counter[str] = Counter()

    # -- the asyncio side ----------------------------------------------------------------------
    def connect(self) -> None:
        """Start the supervisor thread (returns at once; `connected` is set on CONNACK)."""
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="pitbox-uplink",
                                            daemon=True)
        self._supervisor.start()

    async def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise UplinkError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                fut.set_result(None)
            else:
                self._waiting[info.mid] = fut
                self._sent_at[info.mid] = self._clock()
        await fut
        self.stats["published"] += 1

    def close(self) -> None:
        self._stop.set()
        self._ended.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
            self._supervisor = None
        with self._lock:
            for fut in self._waiting.values():
                if self._loop is not None and not fut.done():
                    self._loop.call_soon_threadsafe(_fail, fut, UplinkError("uplink closed"))
            self._waiting.clear()
            self._sent_at.clear()

    # -- the supervisor thread: the reconnect loop -------------------------------------------------
    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            outcome = self._one_session()
            if outcome == "renew":
                failures = 0
                continue
            if outcome == "clock":
                self._stop.wait(CLOCK_POLL_S)
                continue
            if outcome == "stopped":
                break
            failures = 0 if outcome == "was_up" else failures + 1
            delay = self.backoff.delay(failures, self._rng)
            self.stats["retries"] += 1
            self._say("retry", f"uplink: {self.last_error}; next try in {delay:.1f} s")
            self._stop.wait(delay)

    def _one_session(self) -> str:
        try:
            password = self._token()
        except ClockNotSynced as exc:
            self.last_error = str(exc)
            self.stats["clock_waits"] += 1
            self._say("clock", f"uplink: {exc}; capture goes on, the outbox fills")
            return "clock"
        except (ValueError, TypeError, jwt.PyJWTError) as exc:  # a broken key: count, retry
            self.last_error = f"cannot mint a token: {exc}"
            self.stats["token_errors"] += 1
            return "down"
        minted = self._clock()
        self.stats["tokens"] += 1
        self._client.username_pw_set("unused", password)
        self._ended.clear()
        self._up = False
        try:
            self._client.connect(self.host, self.port, keepalive=self._keepalive)
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake, bad name
            self.last_error = f"cannot reach {self.host}:{self.port}: {exc}"
            self.stats["unreachable"] += 1
            return "down"
        self._client.loop_start()
        renew_at = minted + self.token_lifetime_s - self.refresh_margin_s
        renew = stalled = False
        while not self._ended.is_set() and not self._stop.is_set():
            if self._up and self._clock() >= renew_at:
                renew = True
                break
            if self._up and self._acks_stalled():
                stalled = True
                break
            self._ended.wait(0.05)
        was_up = self._up
        if renew or stalled or self._stop.is_set():
            self._client.disconnect()  # clean: the broker drops no will, paho resends in-flight
        self._client.loop_stop()
        self._set_connected(False)
        if self._stop.is_set():
            return "stopped"
        if stalled:
            self.stats["ack_timeouts"] += 1
            self.last_error = (f"no PUBACK from the broker for {self.ack_timeout_s:.0f} s while "
                               f"{len(self._sent_at)} messages waited; reconnected to resend them")
        if renew:
            self.stats["renewals"] += 1
            log.info("uplink: token renewed by reconnecting (%.0f s lifetime)",
                     self.token_lifetime_s)
            return "renew"
        return "was_up" if was_up else "down"

    def _acks_stalled(self) -> bool:
        """Publishes wait, and neither a PUBACK nor a (re)send happened for `ack_timeout_s`.
        (Not the oldest message's age alone: on a slow link a full window takes long to
        drain while PUBACKs keep coming.)"""
        with self._lock:
            if not self._sent_at:
                return False
            latest = max(self._progress_at, max(self._sent_at.values()))
        return self._clock() - latest > self.ack_timeout_s

    def _say(self, what: str, line: str) -> None:
        now = self._clock()
        if now - self._said.get(what, -SAY_AGAIN_S) >= SAY_AGAIN_S:
            self._said[what] = now
            log.warning("%s", line)

    # -- paho's network thread ---------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.stats["refused"] += 1
            self.last_error = f"broker refused the connection: {reason}"
            return
        self.stats["connects"] += 1
        self._up = True
        with self._lock:  # paho resends what waited; its clock starts now
            self._progress_at = self._clock()
            for mid in self._sent_at:
                self._sent_at[mid] = self._progress_at
        log.info("uplink: connected to %s:%d", self.host, self.port)
        for topic in self._subscribe:
            client.subscribe(topic, qos=1)
        self._set_connected(True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if self._up and not self._stop.is_set():
            self.last_error = f"connection lost ({reason})"
        self._set_connected(False)
        self._ended.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        with self._lock:
            self._progress_at = self._clock()
            self._sent_at.pop(mid, None)
            fut = self._waiting.pop(mid, None)
            if fut is None:
                self._early.add(mid)
                return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(_resolve, fut)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic.endswith("/config"):
            self.last_config = bytes(msg.payload)
            self.stats["configs"] += 1
            log.info("uplink: config received (%d bytes)", len(msg.payload))
        else:
            self.commands.append((msg.topic, bytes(msg.payload)))
            self.stats["commands"] += 1
            log.info("uplink: command on %s (%d bytes)", msg.topic, len(msg.payload))

    def _set_connected(self, up: bool) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        if up:
            self._loop.call_soon_threadsafe(self._mark_up)
        else:
            self._loop.call_soon_threadsafe(self.connected.clear)

    def _mark_up(self) -> None:
        self.session += 1
        self.connected.set()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
