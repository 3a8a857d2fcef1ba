"""What the bridge's writer loop acknowledges, and on which MQTT connection.

A bridge holds one connection of its own and, while it drains a dead peer's session, one more
under the peer's client id (`takeover`). Every message remembers the connection that delivered
it and which incarnation of it (`generation`, bumped at every connect and loss): a PUBACK only
means something on the connection that received the PUBLISH, so after a reconnect the
message is left to the broker's redelivery instead."""

from __future__ import annotations

import threading
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

    def ack(self, d: Delivery) -> bool:
        """PUBACK `d` if its connection is still up; False if it is stale (redelivered later)."""
        with self._lock:  # not held around paho's own locks in ack(): no lock order to keep
            stale = d.generation != self.generation
        if stale:
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
