"""The bridge shell: MQTT shared subscription → Teamtactics documents in a `Store`.

Threads: paho runs its own network thread (`loop_start`); its `on_message` only puts the
message on a bounded `queue.Queue`. The writer loop (`run`, or the thread `start` makes) owns
the store: it takes up to `batch_max` messages (or what came within `batch_wait_s` of the
first), files each (`filing`: decode, check the envelope's device against the topic's, map to
documents or a dead letter), and commits ONE `store.write` per batch (<= 500 per commit).

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
the batch; so is a message a bug raised on (`bridge_error`, the exception as the reason: a
failed batch is retried message by message and only what fails alone is refused). A failing
store (`StoreError`) is retried with capped, jittered backoff (0.1 s → 5 s), nothing acked
meanwhile; `Receive Maximum` = `queue_max` bounds what the broker sends. Reconnection is
paho's (1 → 30 s); each connect, refusal and loss is logged in words.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.bridge.delivery import Conn
from cloud.bridge.delivery import Delivery as _Message
from cloud.bridge.filing import Filed, file_message, refuse
from cloud.bridge.hot import HOT_INTERVAL_S, HotDocs
from cloud.bridge.layout import coalesce
from cloud.bridge.presence import OFFLINE, ONLINE, presence_filter, presence_topic
from cloud.bridge.takeover import Login, Redundancy
from cloud.store.base import DocWrite, Store
from cloud.store.errors import DocumentError, StoreError
from gateway.errors import ConfigError

log = logging.getLogger("pitbox.bridge")

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
TAKEOVER_GRACE_S = 2.0  # a peer restarting under the same id gets its session back first
TAKEOVER_RETRY_S = 10.0
PUT_TIMEOUT_S = 60.0  # the writer takes from the queue even while the store is down
_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")  # no MQTT wildcards or levels in our topics


class Bridge:
    """One bridge instance; run several with the same `group` and the broker shares the load.

    `stats` counts `messages`, `records`, `dead_letters` (and `dead_<code>` per reason),
    `writes` (store writes), `docs`, `acked`, `store_errors`, `errors` (batches a bug hit),
    `stale_acks` (messages whose connection was lost before their commit; the broker
    redelivers them), `merges` (merge writes filed) and `hot_writes` (merged documents
    written: fewer, as each hot document is written at most once per interval), `hot_stale`
    (older merges dropped), `takeovers`, `takeovers_drained` and `takeover_messages`.
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
        self.subscribed = threading.Event()  # set while a SUBACK granted the subscriptions
        self._now, self._mono = now, mono
        # room for our own in-flight window and one takeover's (see Takeover)
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=2 * queue_max)
        self._queue_max = queue_max
        self._stop = threading.Event()
        self._closing = False  # our own disconnect: not worth a warning
        self._thread: threading.Thread | None = None
        self.redundancy = Redundancy(
            self.client_id, group, Login(host, port, username, password, session_expiry_s,
                                         queue_max, keepalive_s),
            unsubscribe=[*self.topics, presence_filter(group)], deliver=self._put,
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
        self._thread = threading.Thread(target=self.run, args=(self._stop,),
                                        name="pitbox-bridge", daemon=True)
        self._thread.start()

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
        """Connect, then write batches until `stop` is set (the `serve_forever` form)."""
        self._stop = stop  # also ends waits for room in the queue (`_put`)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self._queue_max
        log.info("bridge: connecting to %s:%d as %r, subscribing to %s",
                 self.host, self.port, self.client_id, " and ".join(map(repr, self.topics)))
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s,
                                   clean_start=False, properties=props)
        self._closing = False
        self._client.loop_start()
        next_stats = time.monotonic() + self.stats_every_s
        try:
            while not stop.is_set():
                batch = self._take()
                due = self.hot.next_due_ns()
                if batch or (due is not None and due <= self._mono()):
                    self._ack(self._handle_or_refuse(batch, stop))
                self.redundancy.tend(self._client.is_connected())
                if self.stats_every_s and time.monotonic() >= next_stats:
                    log.info("bridge: %s", _fmt(self.stats))
                    next_stats = time.monotonic() + self.stats_every_s
            if len(self.hot):  # what waits for its interval is written now, not redelivered
                self._ack(self._handle([], stop, force=True))
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
    def _take(self) -> list[_Message]:
        """Up to `batch_max` messages: the first waits <= `batch_wait_s`, the rest ride along
        until `batch_wait_s` after the first."""
        try:
            batch = [self._queue.get(timeout=self.batch_wait_s)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0
                             else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle_or_refuse(self, batch: list[_Message], stop: threading.Event) -> list[_Message]:
        """`_handle`, and if a bug raises, each message on its own: the ones that fail alone
        become `bridge_error` dead letters, acknowledged like any refusal. A broad except,
        at the writer task's top level: it logs and counts."""
        try:
            return self._handle(batch, stop)
        except Exception as exc:
            self.stats["errors"] += 1
            log.exception("bridge: a batch of %d messages failed; retrying them one by one",
                          len(batch))
            if len(batch) == 1:
                return self._refuse_after_bug(batch[0], exc, stop)
        done: list[_Message] = []
        for msg in batch:
            try:
                done += self._handle([msg], stop)
            except Exception as exc:
                log.exception("bridge: message %d on %s failed alone", msg.mid, msg.topic)
                done += self._refuse_after_bug(msg, exc, stop)
        return done

    def _refuse_after_bug(self, msg: _Message, exc: Exception,
                          stop: threading.Event) -> list[_Message]:
        self.hot.drop(msg)  # acknowledged now: HotDocs must not release it a second time
        f = refuse(msg.topic, msg.payload, "bridge_error",
                   bug_reason(exc), mid=msg.mid,
                   received_ns=self._now())
        self._count_dead(msg, f)
        return [msg] if self._retrying(lambda: self._write(f.docs), stop, 1) else []

    def _handle(self, batch: list[_Message], stop: threading.Event, *,
                force: bool = False) -> list[_Message]:
        """File the batch, hold its hot writes, commit the rest plus what is due; the messages
        to acknowledge: every one none of whose documents is still held."""
        filed = [(msg, self._file(msg)) for msg in batch]
        ready = []
        for msg, f in filed:
            if not self.hot.hold(msg, [d for d in f.docs if d.merge]):
                ready.append(msg)
        self.stats["hot_stale"] = self.hot.stale_dropped
        flush = self.hot.due(self._mono(), force=force)
        if not self._retrying(lambda: self._commit(filed, flush.docs), stop, len(batch)):
            return []
        released = self.hot.committed(flush, self._mono())
        self.stats["merges"] += sum(1 for _, f in filed for d in f.docs if d.merge)
        self.stats["hot_writes"] += len(flush.docs)
        return ready + [m for m in released if isinstance(m, _Message)]

    def _retrying(self, write: Callable[[], None], stop: threading.Event, held: int) -> bool:
        """Run `write`, retrying `StoreError` with capped, jittered backoff; False if `stop`
        came first (nothing is acknowledged then: the broker redelivers)."""
        delay = BACKOFF_MIN_S
        while True:
            try:
                write()
                return True
            except StoreError as exc:
                self.stats["store_errors"] += 1
                log.warning("bridge: store write failed (%s); retrying in %.1f s, "
                            "%d messages held unacknowledged", exc, delay, held)
                if stop.wait(delay * random.uniform(0.5, 1.0)):  # jitter: instances drift apart
                    log.info("bridge: stopping with %d uncommitted messages; the broker "
                             "will redeliver them", held + self.hot.waiting_messages)
                    return False
                delay = min(delay * 2, BACKOFF_MAX_S)

    def _file(self, msg: _Message) -> Filed:
        self.stats["messages"] += 1
        try:
            f = file_message(self.prefix, msg.topic, msg.payload, mid=msg.mid,
                             received_ns=self._now())
        except Exception as exc:  # a bug in filing: keep the message, with the bug's words
            log.exception("bridge: filing message %d on %s failed", msg.mid, msg.topic)
            f = refuse(msg.topic, msg.payload, "bridge_error",
                       bug_reason(exc), mid=msg.mid,
                       received_ns=self._now())
        if f.code is not None:
            self._count_dead(msg, f)
        self.stats["records"] += f.records
        return f

    def _count_dead(self, msg: _Message, f: Filed) -> None:
        self.stats["dead_letters"] += 1
        self.stats[f"dead_{f.code}"] += 1
        log.warning("bridge: dead letter (%s) from %s (%d bytes): %s", f.code, msg.topic,
                    len(msg.payload), f.reason)

    def _commit(self, filed: list[tuple[_Message, Filed]], hot: list[DocWrite]) -> None:
        """One write for the batch's set documents and the due hot ones; if the store refuses
        a document (or raises anything but `StoreError`), write message by message and
        dead-letter just the refused ones."""
        cold = [d for _, f in filed for d in f.docs if not d.merge]
        try:
            self._write(coalesce(cold) + hot)
        except StoreError:
            raise
        except Exception as exc:
            log.warning("bridge: store refused a document (%s: %s); writing one by one",
                        type(exc).__name__, exc, exc_info=not isinstance(exc, DocumentError))
            for msg, f in filed:
                self._write_or_refuse(msg, [d for d in f.docs if not d.merge])
            for doc in hot:
                try:
                    self._write([doc])
                except StoreError:
                    raise
                except Exception:
                    self.stats["hot_refused"] += 1
                    log.exception("bridge: store refused %s/%s", doc.collection, doc.doc_id)

    def _write_or_refuse(self, msg: _Message, docs: list[DocWrite]) -> None:
        try:
            self._write(coalesce(docs))
        except StoreError:
            raise
        except Exception as refused:
            if isinstance(refused, DocumentError):
                code, why = "bad_document", f"store refused: {refused}"
            else:
                log.exception("bridge: message %d on %s: the store raised", msg.mid,
                              msg.topic)
                code, why = "bridge_error", bug_reason(refused)
            f = refuse(msg.topic, msg.payload, code, why, mid=msg.mid, received_ns=self._now())
            self._count_dead(msg, f)
            self._write(f.docs)

    def _write(self, docs: Sequence[DocWrite]) -> None:
        if docs:
            self.store.write(docs)
            self.stats["writes"] += 1
            self.stats["docs"] += len(docs)

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
        if not self._put(self._conn.delivery(message)):
            log.warning("bridge: queue full, message %d on %s left unacknowledged",
                        message.mid, message.topic)

    def _put(self, msg: _Message) -> bool:
        """Queue a message for the writer (waits while the queue is full); False if it stayed
        full or the bridge is stopping (the message stays unacknowledged)."""
        deadline = time.monotonic() + PUT_TIMEOUT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self._queue.put(msg, timeout=0.5)
                return True
            except queue.Full:
                continue
        self.stats["queue_full"] += 1
        return False


def default_client_id(group: str) -> str:
    """`<group>-<hostname>-<6 hex>`: unique per process, so two instances on one host never
    share (and kick each other off) one MQTT session."""
    host = re.sub(r"[^A-Za-z0-9._~-]", "-", socket.gethostname())[:40] or "host"
    return f"{group}-{host}-{secrets.token_hex(3)}"


def bug_reason(exc: BaseException) -> str:
    """A dead letter's reason when a bug raised on the message."""
    return f"bridge error: {type(exc).__name__}: {exc}"


def _fmt(stats: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(stats.items())) or "nothing done"
