"""The bridge shell: MQTT shared subscription → Teamtactics documents in a `Store`.

Threads: paho runs its own network thread (`loop_start`); its `on_message` only puts the
message on a bounded `queue.Queue`. The bridge's writer loop (`run`, or the thread `start`
makes) owns the store: it takes up to `batch_max` messages, or what arrived within
`batch_wait_s` of the first, decodes each (`wire.decode`), checks that the envelope's device is
the topic's device, maps with `layout.docs_for`, coalesces, and commits ONE `store.write` per
batch. Only after that commit does it send the PUBACKs (`manual_ack=True`), so a crash before
the commit loses nothing: the broker still holds the messages and redelivers them (the MQTT v5
session outlives the connection for `session_expiry_s`; use a stable `client_id` so a restarted
bridge resumes it). Writes are idempotent on (device, seq), so redelivery is harmless.

Refused messages (not an envelope, device ≠ topic, no valid collection name, a document the
store refuses) become `deadletters` documents in the same batch and are acknowledged.
A store that fails (`StoreError`) is retried with capped backoff (0.1 s → 5 s); nothing is
acknowledged meanwhile, and the broker's in-flight window (`Receive Maximum` = the queue size)
stops it sending more than the queue holds. Reconnection is paho's (`reconnect_delay_set`,
1 → 30 s); each connect, refusal and loss is logged in words.
"""

from __future__ import annotations

import logging
import queue
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

from cloud.bridge.layout import LayoutError, coalesce, dead_letter, device_of, docs_for
from cloud.store.base import DocWrite, Store
from cloud.store.errors import DocumentError, StoreError
from gateway.errors import WireError
from gateway.uplink import wire

log = logging.getLogger("pitbox.bridge")

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection delivered it: a PUBACK only makes sense on that one


class Bridge:
    """One bridge instance; run several with the same `group` and the broker shares the load.

    `stats` counts `messages`, `records`, `dead_letters`, `writes` (store commits), `docs`,
    `acked`, `store_errors`, `queue_full`, `stale_acks` (messages whose connection was lost
    before their commit; the broker redelivers them).
    """

    def __init__(self, store: Store, *, host: str, port: int, username: str, password: str,
                 prefix: str = "/devices", group: str = "pitbox-bridge",
                 client_id: str | None = None, batch_max: int = 500, batch_wait_s: float = 0.1,
                 queue_max: int = 1000, session_expiry_s: int = 3600, keepalive_s: int = 30,
                 now: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.host, self.port = host, port
        self.topic = f"$share/{group}/{prefix}/+/events/+"
        self.prefix = prefix
        self.client_id = client_id or f"{group}-{socket.gethostname()}"
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.session_expiry_s, self.keepalive_s = session_expiry_s, keepalive_s
        self.stats: Counter[str] = Counter()
        self.subscribed = threading.Event()  # set while a SUBACK granted the subscription
        self._now = now
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=queue_max)
        self._queue_max = queue_max
        self._generation = 0
        self._stop = threading.Event()
        self._closing = False  # our own disconnect: not worth a warning
        self._thread: threading.Thread | None = None
        self._client = self._make_client(username, password)

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
        """Stop the loop (an uncommitted batch stays unacknowledged) and disconnect."""
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
        log.info("bridge: connecting to %s:%d as %r, subscribing to %r",
                 self.host, self.port, self.client_id, self.topic)
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s,
                                   clean_start=False, properties=props)
        self._closing = False
        self._client.loop_start()
        try:
            while not stop.is_set():
                batch = self._take()
                if batch:
                    self._handle(batch, stop)
        finally:
            self._closing = True
            self._client.disconnect()
            self._client.loop_stop()
            self.subscribed.clear()
            log.info("bridge: stopped (%s)", _fmt(self.stats))

    # -- the writer loop ---------------------------------------------------------------------
    def _take(self) -> list[_Message]:
        """Up to `batch_max` messages: the first waits ≤ `batch_wait_s`, the rest ride along
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

    def _handle(self, batch: list[_Message], stop: threading.Event) -> None:
        per_message = [(msg, self._map(msg)) for msg in batch]
        delay = BACKOFF_MIN_S
        while True:
            try:
                self._commit(per_message)
                break
            except StoreError as exc:
                self.stats["store_errors"] += 1
                log.warning("bridge: store write failed (%s); retrying in %.1f s, "
                            "%d messages held unacknowledged", exc, delay, len(batch))
                if stop.wait(delay):
                    log.info("bridge: stopping with %d uncommitted messages; the broker "
                             "will redeliver them", len(batch))
                    return
                delay = min(delay * 2, BACKOFF_MAX_S)
        self._ack(batch)

    def _map(self, msg: _Message) -> list[DocWrite]:
        """The documents of one message, or its one dead letter."""
        self.stats["messages"] += 1
        try:
            env = wire.decode(msg.payload)
            topic_device = device_of(self.prefix, msg.topic)
            if env.device != topic_device:
                raise WireError(f"envelope device {env.device!r} is not the topic's device "
                                f"{topic_device!r}")
            docs = docs_for(env)
        except (WireError, LayoutError) as exc:
            return [self._dead(msg, str(exc))]
        self.stats["records"] += len(env.records)
        return docs

    def _dead(self, msg: _Message, reason: str) -> DocWrite:
        self.stats["dead_letters"] += 1
        log.warning("bridge: dead letter from %s (%d bytes): %s", msg.topic, len(msg.payload),
                    reason)
        return dead_letter(msg.topic, msg.payload, reason, mid=msg.mid,
                           received_ns=self._now())

    def _commit(self, per_message: list[tuple[_Message, list[DocWrite]]]) -> None:
        """One write for the batch; if the store refuses a document, find the message that
        holds it (one write per message) and dead-letter just that one."""
        try:
            self._write(coalesce(doc for _, docs in per_message for doc in docs))
        except DocumentError as exc:
            log.warning("bridge: store refused a document (%s); writing message by message",
                        exc)
            for msg, docs in per_message:
                try:
                    self._write(coalesce(docs))
                except DocumentError as refused:
                    self._write([self._dead(msg, f"store refused: {refused}")])

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
        client.subscribe(self.topic, qos=1)

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
            log.error("bridge: the broker refused the subscription %r: %s", self.topic,
                      ", ".join(str(r) for r in reasons))
        else:
            self.subscribed.set()
            log.info("bridge: subscribed to %r", self.topic)

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
