"""What the bridge's writer loop acknowledges, on which MQTT connection, and the queue between.

A bridge holds one connection of its own and, while it drains a dead peer's session, one more
under the peer's client id (`takeover`). Every message remembers the connection that delivered
it and which incarnation of it (`generation`, bumped at every connect and loss): a PUBACK only
means something on the connection that received the PUBLISH, so after a reconnect the
message is left to the broker's redelivery instead (the session is resumed, `clean_start=False`,
and MQTT v5 has the broker send every unacknowledged PUBLISH again)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt


class Conn:
    """The acknowledging side of one paho client (thread-safe; acks come from the writer)."""

    def __init__(self, client: mqtt.Client, *, on_ack: Callable[[], None] | None = None) -> None:
        self.client = client
        self.generation = 0
        self._on_ack = on_ack
        self._lock = threading.Lock()

    def renew(self) -> None:
        """A connect or a loss: what was delivered before can no longer be acknowledged."""
        with self._lock:
            self.generation += 1

    def delivery(self, message: mqtt.MQTTMessage) -> Delivery:
        return Delivery(message.topic, bytes(message.payload), message.mid, message.qos,
                        self.generation, self)

    def live(self, d: Delivery) -> bool:
        """Whether `d` came on this connection as it is now (its ack would still count)."""
        with self._lock:
            return d.generation == self.generation

    def ack(self, d: Delivery) -> bool:
        """PUBACK `d` if its connection is still up; False if it is stale (redelivered later)."""
        if not self.live(d):  # its lock is not held around paho's own: no lock order to keep
            return False
        self.client.ack(d.mid, d.qos)
        if self._on_ack is not None:
            self._on_ack()
        return True


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: hashed by identity (HotDocs tokens)
class Delivery:
    """One MQTT message as the writer loop sees it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    conn: Conn


class Inbox:
    """The queue from paho's network threads to the writer loop. `put` never waits: a network
    thread that waits sends no PINGREQ, and the broker drops the connection after 1.5 x
    keepalive (a disconnect loop while the store is down).

    Room: the broker sends each connection at most Receive Maximum unacknowledged messages,
    and a bridge has at most two connections (its own and one takeover's), so `maxsize` =
    2 x Receive Maximum holds every live message. Messages whose connection is gone (`stale`:
    their ack would mean nothing, and the broker sends them again on the resumed session) are
    dropped when taken, and first when room is short. Counts: `stale_dropped`, `refused`."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.stale_dropped = 0
        self.refused = 0  # only if a broker sent more than Receive Maximum
        self._items: deque[Delivery] = deque()
        self._cond = threading.Condition()

    def put(self, d: Delivery) -> bool:
        """Queue `d` at once; False (and `refused` counted) if even without stale messages
        there is no room."""
        with self._cond:
            if len(self._items) >= self.maxsize:
                live = [m for m in self._items if m.conn.live(m)]
                self.stale_dropped += len(self._items) - len(live)
                self._items = deque(live)
            if len(self._items) >= self.maxsize:
                self.refused += 1
                return False
            self._items.append(d)
            self._cond.notify()
            return True

    def take(self, n: int, wait_s: float) -> list[Delivery]:
        """Up to `n` live messages: waits <= `wait_s` for the first, then takes what comes
        until `wait_s` after it."""
        batch: list[Delivery] = []
        deadline = time.monotonic() + wait_s
        with self._cond:
            while len(batch) < n:
                if self._items:
                    d = self._items.popleft()
                    if not d.conn.live(d):
                        self.stale_dropped += 1
                    else:
                        if not batch:
                            deadline = time.monotonic() + wait_s
                        batch.append(d)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        return batch
