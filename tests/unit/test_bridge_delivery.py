"""The queue between paho's network threads and the bridge's writer: `put` never waits, and
messages whose connection is gone give way (they are redelivered on the resumed session).

No broker: a `Conn` only needs a paho client object to exist; `renew()` is what paho's
callbacks call at every connect and loss."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.bridge.delivery import Conn, Delivery, Inbox


def conn() -> Conn:
    return Conn(mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True))


def msg(c: Conn, mid: int) -> Delivery:
    return Delivery("/devices/box-1/events/lap", b"x", mid, 1, c.generation, c)


def test_a_put_into_a_full_queue_of_live_messages_is_refused_at_once() -> None:
    c = conn()
    inbox = Inbox(3)
    assert all(inbox.put(msg(c, m)) for m in range(3))
    t0 = time.monotonic()
    assert not inbox.put(msg(c, 3))
    assert time.monotonic() - t0 < 1.0  # before: waited up to 60 s in paho's thread
    assert (inbox.refused, inbox.stale_dropped) == (1, 0)
    assert [d.mid for d in inbox.take(10, 0.0)] == [0, 1, 2]


def test_messages_of_a_lost_connection_make_room_for_the_new_ones() -> None:
    """Room for Receive Maximum of ours plus a takeover's window, reconnects or not."""
    ours, takeover = conn(), conn()
    inbox = Inbox(4)  # 2 x Receive Maximum of 2
    for m in range(2):
        assert inbox.put(msg(ours, m)) and inbox.put(msg(takeover, 10 + m))
    ours.renew()  # lost and back: the broker sends its two in-flight messages again
    assert inbox.put(msg(ours, 0)) and inbox.put(msg(ours, 1))
    assert (inbox.stale_dropped, inbox.refused) == (2, 0)
    assert [(d.conn is ours, d.mid) for d in inbox.take(10, 0.0)] == [
        (False, 10), (False, 11), (True, 0), (True, 1)]
    assert inbox.stale_dropped == 2  # the stale two went when room was short, not again


def test_take_drops_stale_messages_and_hands_out_only_live_ones() -> None:
    c = conn()
    inbox = Inbox(10)
    for m in range(3):
        inbox.put(msg(c, m))
    c.renew()
    inbox.put(msg(c, 7))
    assert [d.mid for d in inbox.take(10, 0.0)] == [7]
    assert inbox.stale_dropped == 3 and inbox.take(10, 0.0) == []


def test_take_waits_for_the_first_message_at_most_wait_s_and_stops_at_n() -> None:
    c = conn()
    inbox = Inbox(10)
    t0 = time.monotonic()
    assert inbox.take(5, 0.05) == []
    assert 0.04 <= time.monotonic() - t0 < 1.0
    for m in range(4):
        inbox.put(msg(c, m))
    assert [d.mid for d in inbox.take(3, 0.05)] == [0, 1, 2]
    assert [d.mid for d in inbox.take(3, 0.0)] == [3]


def test_ack_counts_only_for_a_delivery_of_the_connection_as_it_is_now() -> None:
    acks: list[int] = []
    c = Conn(mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True),
             on_ack=lambda: acks.append(1))
    old = msg(c, 1)
    c.renew()  # a loss: the PUBACK of `old` would mean nothing on the new connection
    assert not c.ack(old) and acks == []
    assert c.ack(msg(c, 2)) and acks == [1]
