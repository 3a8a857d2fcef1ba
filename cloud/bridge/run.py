"""The bridge shell: MQTT shared subscription → Teamtactics documents in a `Store`.

Threads: paho runs its own network thread (`loop_start`); its `on_message` only puts the
message on a bounded `queue.Queue`. The bridge's writer loop (`run`, or the thread `start`
makes) owns the store: it takes up to `batch_max` messages, or what arrived within
`batch_wait_s` of the first, files each (`filing.file_message`: decode, check the envelope's
device against the topic's, map to documents, or make a dead letter), coalesces, and commits
ONE `store.write` per batch (the store splits it into commits of <= 500 writes).

Hot documents (every merge: `state`, `info`, the field cars' states, `devices/{id}`) go
through `hot.HotDocs`: each is written at most once per `hot_interval_s` (Firestore sustains
~1 write/s per document), folded meanwhile. A message is acknowledged (`manual_ack=True`)
only after every document it touched was committed, so a crash before that loses nothing: the
broker still holds the message and redelivers it (the MQTT v5 session outlives the connection
for `session_expiry_s`; a restarted bridge resumes it under the same `client_id`). Writes are
idempotent on (device, seq), so redelivery is harmless.

Several instances with the same `group` share the subscription; Mosquitto 2.0 keeps handing a
stopped member its share (queued in its session) until it comes back, so run every instance
under a supervisor that restarts it with the same client id (systemd `Restart=always`).

Refused messages become `deadletters` documents (with a `code`, see `filing`) in the same
batch and are acknowledged. A store that fails (`StoreError`) is retried with capped, jittered
backoff (0.1 s → 5 s); nothing is acknowledged meanwhile, and the broker's in-flight window (`Receive
Maximum` = the queue size) stops it sending more than the queue holds. Reconnection is
paho's (`reconnect_delay_set`, 1 → 30 s); each connect, refusal and loss is logged in words.
"""

from __future__ import annotations

import logging
import queue
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.bridge.filing import Filed, file_message, refuse
from cloud.bridge.hot import HotDocs
from cloud.bridge.layout import coalesce
from cloud.store.base import DocWrite, Store
from cloud.store.errors import DocumentError, StoreError

log = logging.getLogger("pitbox.bridge")

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: hashed by identity (HotDocs tokens)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection delivered it: a PUBACK only makes sense on that one


class Bridge:
    """One bridge instance; run several with the same `group` and the broker shares the load.

    `stats` counts `messages`, `records`, `dead_letters` (and `dead_<code>` per reason),
    `writes` (store writes), `docs`, `acked`, `store_errors`, `queue_full`, `stale_acks`
    (messages whose connection was lost before their commit; the broker redelivers them),
    `merges` (merge writes filed) and `hot_writes` (merged documents written: fewer, as
    each hot document is written at most once per interval), `hot_stale` (older merges
    dropped).
    """

    def __init__(self, store: Store, *, host: str, port: int, username: str, password: str,
                 prefix: str = "/devices", group: str = "pitbox-bridge",
                 client_id: str | None = None, batch_max: int = 500, batch_wait_s: float = 0.1,
                 queue_max: int = 1000, session_expiry_s: int = 3600, keepalive_s: int = 30,
                 hot_interval_s: float = 1.0, stats_every_s: float = 0.0,
                 now: Callable[[], int] = time.time_ns,
                 mono: Callable[[], int] = time.monotonic_ns) -> None:
        self.store = store
        self.host, self.port = host, port
        self.topics = [f"$share/{group}/{prefix}/+/events/+", f"$share/{group}/{prefix}/+/state"]
        self.prefix = prefix
        self.client_id = client_id or f"{group}-{socket.gethostname()}"
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.session_expiry_s, self.keepalive_s = session_expiry_s, keepalive_s
        self.stats_every_s = stats_every_s
        self.stats: Counter[str] = Counter()
        self.hot = HotDocs(int(hot_interval_s * 1e9))
        self.subscribed = threading.Event()  # set while a SUBACK granted the subscriptions
        self._now, self._mono = now, mono
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=queue_max)
        self._queue_max = queue_max
        self._generation = 0
        self._stop = threading.Event()
        self._closing = False  # our own disconnect: not worth a warning
        self._thread: threading.Thread | None = None
        self._client = self._make_client(username, password)

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
                    try:
                        self._handle(batch, stop)
                    except Exception:  # a bug must not end the loop; the batch stays unacked
                        self.stats["errors"] += 1
                        log.exception("bridge: batch of %d messages failed; they stay "
                                      "unacknowledged until the next connection", len(batch))
                        stop.wait(BACKOFF_MAX_S)
                if self.stats_every_s and time.monotonic() >= next_stats:
                    log.info("bridge: %s", _fmt(self.stats))
                    next_stats = time.monotonic() + self.stats_every_s
            if len(self.hot):  # what waits for its interval is written now, not redelivered
                self._handle([], stop, force=True)
        finally:
            self._closing = True
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

    def _handle(self, batch: list[_Message], stop: threading.Event, *,
                force: bool = False) -> None:
        """File the batch, hold its hot writes, commit the rest plus what is due, then ack
        every message none of whose documents is still held."""
        filed = [(msg, self._file(msg)) for msg in batch]
        ready = []
        for msg, f in filed:
            if not self.hot.hold(msg, [d for d in f.docs if d.merge]):
                ready.append(msg)
        self.stats["hot_stale"] = self.hot.stale_dropped
        flush = self.hot.due(self._mono(), force=force)
        delay = BACKOFF_MIN_S
        while True:
            try:
                self._commit(filed, flush.docs)
                break
            except StoreError as exc:
                self.stats["store_errors"] += 1
                log.warning("bridge: store write failed (%s); retrying in %.1f s, "
                            "%d messages held unacknowledged", exc, delay, len(batch))
                if stop.wait(delay * random.uniform(0.5, 1.0)):  # jitter: instances drift apart
                    log.info("bridge: stopping with %d uncommitted messages; the broker "
                             "will redeliver them", len(batch) + self.hot.waiting_messages)
                    return
                delay = min(delay * 2, BACKOFF_MAX_S)
        released = self.hot.committed(flush, self._mono())
        self.stats["merges"] += sum(1 for _, f in filed for d in f.docs if d.merge)
        self.stats["hot_writes"] += len(flush.docs)
        self._ack(ready + [m for m in released if isinstance(m, _Message)])

    def _file(self, msg: _Message) -> Filed:
        self.stats["messages"] += 1
        f = file_message(self.prefix, msg.topic, msg.payload, mid=msg.mid,
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
        a document, write message by message and dead-letter just the refused ones."""
        cold = [d for _, f in filed for d in f.docs if not d.merge]
        try:
            self._write(coalesce(cold) + hot)
        except DocumentError as exc:
            log.warning("bridge: store refused a document (%s); writing one by one", exc)
            for msg, f in filed:
                self._write_or_refuse(msg, [d for d in f.docs if not d.merge])
            for doc in hot:
                try:
                    self._write([doc])
                except DocumentError as refused:
                    self.stats["hot_refused"] += 1
                    log.error("bridge: store refused %s/%s: %s", doc.collection, doc.doc_id,
                              refused)

    def _write_or_refuse(self, msg: _Message, docs: list[DocWrite]) -> None:
        try:
            self._write(coalesce(docs))
        except DocumentError as refused:
            f = refuse(msg.topic, msg.payload, "bad_document", f"store refused: {refused}",
                       mid=msg.mid, received_ns=self._now())
            self._count_dead(msg, f)
            self._write(f.docs)

    def _write(self, docs: Sequence[DocWrite]) -> None:
        if docs:
            self.store.write(docs)
            self.stats["writes"] += 1
            self.stats["docs"] += len(docs)

    def _ack(self, batch: list[_Message]) -> None:
        for msg in batch:
            if msg.generation != self._generation:
                self.stats["stale_acks"] += 1  # its connection is gone; it comes again
            else:
                self._client.ack(msg.mid, msg.qos)
                self.stats["acked"] += 1

    # -- paho's network thread -------------------------------------------------------------
    def _make_client(self, username: str, password: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
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
        self._generation += 1
        self.stats["connects"] += 1
        log.info("bridge: connected to %s:%d (session %s)", self.host, self.port,
                 "resumed" if flags.session_present else "new")
        client.subscribe([(t, 1) for t in self.topics])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning("bridge: cannot reach %s:%d; paho retries in 1-30 s", self.host, self.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any,
                       flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       props: Properties | None) -> None:
        self.subscribed.clear()
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
        msg = _Message(message.topic, bytes(message.payload), message.mid, message.qos,
                       self._generation)
        try:
            self._queue.put_nowait(msg)
        except queue.Full:  # the broker ignored our Receive Maximum; it redelivers later
            self.stats["queue_full"] += 1
            log.warning("bridge: queue full, message %d on %s left unacknowledged",
                        message.mid, message.topic)


def _fmt(stats: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(stats.items())) or "nothing done"
