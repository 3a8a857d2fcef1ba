"""The bridge shell: MQTT shared subscription → Teamtactics documents in a `Store`.

Threads: paho runs its own network thread (`loop_start`); its `on_message` only puts the
message on a bounded `delivery.Inbox`, never waiting. The writer loop (`run`, or the thread
`start` makes) owns the store: it takes up to `batch_max` messages (or what came within
`batch_wait_s` of the first), files each (`filing`: decode, check the envelope's device
against the topic's, map to documents or a dead letter), and commits ONE `store.write` per
batch (<= 500 per commit; `writer`).

Hot documents (every merge: `state`, `info`, field cars' states, `devices/{id}`) go through
`hot.HotDocs`: each written at most once per `hot_interval_s` by this instance. The broker
spreads one device over every instance, so the default 2.0 s keeps two instances at <= 1
write/s per document (Firestore's sustained limit); with N instances use N s. A message is
acknowledged (`manual_ack=True`) only after every document it touched was committed, so a
crash loses nothing: the broker keeps it in the instance's MQTT v5 session
(`session_expiry_s`). Writes are idempotent on (device, seq): redelivery is harmless.

Redundancy: Mosquitto 2.0 keeps handing a dead member its share (queued in its session). So
each instance keeps a retained presence with a Last Will (`presence`), and when a peer goes
offline one survivor drains the peer's session through this same writer loop under a second
client id, then ends it (`takeover`). Client ids default to `<group>-<hostname>-<random>`,
unique per process (two instances on one host never kick each other off); a restart under a
new id is drained like a dead peer. A fixed `client_id` resumes its own session instead.

Refused messages become `deadletters` documents (a `code`, see `filing`), acknowledged with
the batch; so is a message filing raised on (`bridge_error`, the exception as the reason), one
whose document the store refuses (`DocumentError`: `bad_document`), and one a bug (ours or a
store client's: anything but `StoreError` and `DocumentError`) raises on when it is written
alone (`bridge_error`; see `writer`). Nothing else is ever acknowledged unwritten. A failing
store (`StoreError`) is retried with capped, jittered backoff (0.1 s -> 5 s) for as long as it
fails, the batch held unacknowledged. After a bug the batch is retried the same way, message
by message, so one poisoned message cannot stop the others; if even that keeps failing (the
dead letters too) for `ERRORS_BEFORE_EXIT` rounds in a row, the writer gives up (`error`,
`finished`) so that `pitbox bridge run` exits non-zero and its supervisor (systemd, a container
runtime) restarts it; the broker keeps what was not acknowledged.
`Receive Maximum` = `queue_max` bounds what the broker sends (see `Inbox` for the room).
Reconnection is paho's (1 -> 30 s); each connect, refusal and loss is logged in words.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.bridge.delivery import Conn, Inbox
from cloud.bridge.delivery import Delivery as _Message
from cloud.bridge.hot import HOT_INTERVAL_S, HotDocs
from cloud.bridge.presence import OFFLINE, ONLINE, presence_filter, presence_topic
from cloud.bridge.takeover import Login, Redundancy
from cloud.bridge.writer import Batch, Writer
from cloud.store.base import Store
from cloud.store.errors import StoreError
from gateway.errors import ConfigError, PitboxError

log = logging.getLogger("pitbox.bridge")

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
TAKEOVER_GRACE_S = 2.0  # a peer restarting under the same id gets its session back first
TAKEOVER_RETRY_S = 10.0
ERRORS_BEFORE_EXIT = 10  # failed rounds in a row that are no store outage: 10-21 s of backoff
_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")  # no MQTT wildcards or levels in our topics


class BridgeError(PitboxError, RuntimeError):
    """The writer loop gave up: something other than a store outage kept failing."""


class Bridge:
    """One bridge instance; run several with the same `group` and the broker shares the load.

    `stats` counts `messages`, `records`, `dead_letters` (and `dead_<code>` per reason),
    `writes` (store writes), `docs`, `acked`, `store_errors`, `errors` (writer rounds a bug
    failed), `stale_acks` (messages whose connection was lost before their commit) and
    `stale_dropped` (lost before the writer took them; the broker redelivers both),
    `queue_full`, `merges` (merge writes filed) and `hot_writes` (merged documents written:
    fewer, as each hot document is written at most once per interval), `hot_stale` (older
    merges dropped), `hot_refused`, `takeovers`, `takeovers_drained`, `takeover_messages`.

    `finished` is set when the writer thread of `start` has ended; `error` then says why if it
    gave up on its own (a `BridgeError`, or whatever ended it).
    """

    def __init__(self, store: Store, *, host: str, port: int, username: str, password: str,
                 prefix: str = "/devices", group: str = "pitbox-bridge",
                 client_id: str | None = None, batch_max: int = 500, batch_wait_s: float = 0.1,
                 queue_max: int = 1000, session_expiry_s: int = 3600, keepalive_s: int = 30,
                 hot_interval_s: float = HOT_INTERVAL_S, stats_every_s: float = 0.0,
                 takeover_grace_s: float = TAKEOVER_GRACE_S,
                 now: Callable[[], int] = time.time_ns,
                 mono: Callable[[], int] = time.monotonic_ns) -> None:
        self.client_id = client_id or default_client_id(group)
        for what, value in (("group", group), ("client id", self.client_id)):
            if not _ID.fullmatch(value):
                raise ConfigError(f"bridge {what} {value!r}: use 1-128 of A-Z a-z 0-9 . _ ~ -")
        self.store = store
        self.host, self.port = host, port
        self.group, self.prefix = group, prefix
        self.topics = [f"$share/{group}/{prefix}/+/events/+", f"$share/{group}/{prefix}/+/state"]
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.session_expiry_s, self.keepalive_s = session_expiry_s, keepalive_s
        self.stats_every_s = stats_every_s
        self.stats: Counter[str] = Counter()
        self.hot = HotDocs(int(hot_interval_s * 1e9))
        self._writer = Writer(store, self.hot, self.stats, prefix=prefix, now=now, mono=mono)
        self.subscribed = threading.Event()  # set while a SUBACK granted the subscriptions
        self._now, self._mono = now, mono
        # room for our own in-flight window and one takeover's (see Takeover)
        self._inbox = Inbox(2 * queue_max)
        self._queue_max = queue_max
        self._stop = threading.Event()
        self._closing = False  # our own disconnect: not worth a warning
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.redundancy = Redundancy(
            self.client_id, group, Login(host, port, username, password, session_expiry_s,
                                         queue_max, keepalive_s),
            unsubscribe=[*self.topics, presence_filter(group)], deliver=self._deliver,
            grace_ns=int(takeover_grace_s * 1e9), retry_ns=int(TAKEOVER_RETRY_S * 1e9),
            mono=mono, stats=self.stats)
        self._client = self._make_client(username, password)
        self._conn = Conn(self._client)

    @property
    def topic(self) -> str:
        """The events subscription (the state one is `topics[1]`)."""
        return self.topics[0]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and run the writer loop in a thread of its own; `stop()` ends both."""
        if self._thread is not None:
            raise RuntimeError("bridge already started")
        self._stop.clear()
        self.finished.clear()
        self.error = None
        self._thread = threading.Thread(target=self._serve, name="pitbox-bridge", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.run(self._stop)
        except Exception as exc:  # the thread's top level: kept for whoever waits on `finished`
            self.error = exc
            if not isinstance(exc, BridgeError):  # (that one was logged where it was raised)
                log.exception("bridge: the writer stopped")
        finally:
            self.finished.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the loop (held hot documents are written first; an uncommitted batch stays
        unacknowledged) and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def run(self, stop: threading.Event) -> None:
        """Connect, then write batches until `stop` is set (the `serve_forever` form). Raises
        `BridgeError` if it gives up (see the module's docstring)."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self._queue_max
        log.info("bridge: connecting to %s:%d as %r, subscribing to %s",
                 self.host, self.port, self.client_id, " and ".join(map(repr, self.topics)))
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s,
                                   clean_start=False, properties=props)
        self._closing = False
        self._client.loop_start()
        try:
            uncommitted = self._write_until(stop)
            if uncommitted:
                for msg in uncommitted:  # not written: HotDocs must not release them
                    self.hot.drop(msg)
                log.info("bridge: stopping with %d uncommitted messages; the broker will "
                         "redeliver them", len(uncommitted))
            if len(self.hot):  # what waits for its interval is written now, not redelivered
                try:
                    self._ack(self._writer.commit(Batch([], []), force=True))
                except StoreError as exc:
                    log.warning("bridge: held hot documents not written at stop (%s); the "
                                "broker will redeliver their messages", exc)
        finally:
            self._close()

    def _close(self) -> None:
        """Stop a takeover (its peer's session stays), say `offline` (so a survivor drains
        what the broker still queues for us), disconnect."""
        self._closing = True
        self.redundancy.stop()
        if self._client.is_connected():
            info = self._client.publish(presence_topic(self.group, self.client_id), OFFLINE,
                                        qos=1, retain=True)
            with contextlib.suppress(ValueError, RuntimeError):  # lost meanwhile: the will says it
                info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()
        self.subscribed.clear()
        log.info("bridge: stopped (%s)", _fmt(self.stats))

    # -- the writer loop ---------------------------------------------------------------------
    def _write_until(self, stop: threading.Event) -> list[_Message]:
        """The writer task: take, file and commit batches until `stop`; the messages taken but
        not committed then. Its top level: a store outage (`StoreError`) is retried for as
        long as it lasts; anything else is logged, counted and retried (the batch message by
        message from then on), and the `ERRORS_BEFORE_EXIT`th failed round in a row raises
        `BridgeError`. What was taken is kept until it is committed (a message dropped
        unacknowledged would hold a slot of the broker's window until the next reconnect),
        and nothing uncommitted is acknowledged."""
        taken: list[_Message] = []
        pending: Batch | None = None
        delay, errors = BACKOFF_MIN_S, 0
        next_stats = time.monotonic() + self.stats_every_s
        while not stop.is_set():
            for key, n in (("stale_dropped", self._inbox.stale_dropped),
                           ("queue_full", self._inbox.refused)):
                if n:  # counted by the network threads; read here, where stats are written
                    self.stats[key] = n
            try:
                self.redundancy.tend(self._client.is_connected())
                if pending is None:
                    taken = taken or self._inbox.take(self.batch_max, self.batch_wait_s)
                    pending = self._writer.prepare(taken)
                    taken = []
                if pending is not None:
                    acks = self._writer.commit(pending)
                    pending = None
                    self._ack(acks)
                delay, errors = BACKOFF_MIN_S, 0
            except StoreError as exc:
                self.stats["store_errors"] += 1
                log.warning("bridge: store write failed (%s); retrying in %.1f s, %d messages "
                            "held unacknowledged", exc, delay, self._held(pending, taken))
            except Exception as exc:  # the writer task's top level: a bug, ours or a client's
                self.stats["errors"] += 1
                errors += 1
                if pending is not None:  # a message that trips the bug alone is dead-lettered
                    pending.one_by_one = True
                log.exception("bridge: writing failed (%d in a row); retrying in %.1f s, %d "
                              "messages held unacknowledged", errors, delay,
                              self._held(pending, taken))
                if errors >= ERRORS_BEFORE_EXIT:
                    raise BridgeError(f"gave up after {errors} failures in a row, the last: "
                                      f"{type(exc).__name__}: {exc}") from exc
            else:
                if self.stats_every_s and time.monotonic() >= next_stats:
                    log.info("bridge: %s", _fmt(self.stats))
                    next_stats = time.monotonic() + self.stats_every_s
                continue
            if stop.wait(delay * random.uniform(0.5, 1.0)):  # jitter: instances drift apart
                break
            delay = min(delay * 2, BACKOFF_MAX_S)
        return [m for m, _ in pending.filed] if pending else taken

    def _held(self, pending: Batch | None, taken: list[_Message]) -> int:
        return (len(pending.filed) if pending else len(taken)) + self.hot.waiting_messages

    def _ack(self, batch: list[_Message]) -> None:
        for msg in batch:
            if msg.conn.ack(msg):
                self.stats["acked"] += 1
            else:
                self.stats["stale_acks"] += 1  # its connection is gone; it comes again

    # -- paho's network threads ------------------------------------------------------------
    def _make_client(self, username: str, password: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # kill -9 included, the broker tells the group we are gone (presence.py)
        client.will_set(presence_topic(self.group, self.client_id), OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, props: Properties | None) -> None:
        if reason.is_failure:
            self.stats["connect_refused"] += 1
            log.error("bridge: broker %s:%d refused the login of %r: %s; retrying",
                      self.host, self.port, self.client_id, reason)
            return
        self._conn.renew()
        self.stats["connects"] += 1
        log.info("bridge: connected to %s:%d (session %s)", self.host, self.port,
                 "resumed" if flags.session_present else "new")
        client.subscribe([(t, 1) for t in self.topics] + [(presence_filter(self.group), 1)])
        client.publish(presence_topic(self.group, self.client_id), ONLINE, qos=1, retain=True)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning("bridge: cannot reach %s:%d; paho retries in 1-30 s", self.host, self.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any,
                       flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       props: Properties | None) -> None:
        self.subscribed.clear()
        self._conn.renew()
        if not self._closing:
            log.warning("bridge: lost the broker %s:%d (%s); paho reconnects in 1-30 s",
                        self.host, self.port, reason)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], props: Properties | None) -> None:
        if any(r.is_failure for r in reasons):
            self.stats["subscribe_refused"] += 1
            log.error("bridge: the broker refused the subscriptions %s: %s", self.topics,
                      ", ".join(str(r) for r in reasons))
        else:
            self.subscribed.set()
            log.info("bridge: subscribed to %s", " and ".join(map(repr, self.topics)))

    def _on_message(self, client: mqtt.Client, userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        if self.redundancy.seen(message.topic, bytes(message.payload)):
            client.ack(message.mid, message.qos)  # presence is not data: acknowledged at once
            return
        self._deliver(self._conn.delivery(message))

    def _deliver(self, msg: _Message) -> bool:
        """Queue a message for the writer, never waiting (also a takeover's); False if there
        was no room (it stays unacknowledged: the broker sends it again after a reconnect)."""
        if self._inbox.put(msg):
            return True
        log.warning("bridge: queue full (more than Receive Maximum %d in flight?): message "
                    "%d on %s left unacknowledged", self._queue_max, msg.mid, msg.topic)
        return False


def default_client_id(group: str) -> str:
    """`<group>-<hostname>-<6 hex>`: unique per process, so two instances on one host never
    share (and kick each other off) one MQTT session."""
    host = re.sub(r"[^A-Za-z0-9._~-]", "-", socket.gethostname())[:40] or "host"
    return f"{group}-{host}-{secrets.token_hex(3)}"


def _fmt(stats: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(stats.items())) or "nothing done"
