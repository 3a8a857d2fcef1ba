"""Pure core of bridge takeover: who is online, and which dead peer's session is ours to drain.

Why: Mosquitto 2.0 keeps routing a dead member's share of a shared subscription into its
persistent session (measured with 2.0.11: in a group of two, every second message went to the
SIGKILLed member's session, and its unacknowledged in-flight messages stayed there too), and
those messages were already acknowledged to the devices. Only a client that resumes the
session under the dead member's client id gets them (the broker re-sends the in-flight ones
with DUP set, then the queued ones).

So every bridge publishes a retained `online` on `{PRESENCE_ROOT}/{group}/{client_id}`, with a
retained Last Will `offline` (the broker publishes it when the connection dies, kill -9
included). A peer that has been `offline` for `grace_ns` is drained by exactly one of the
online instances (the same choice everywhere: a stable hash of the dead id over the sorted
online ids), which then clears the presence topic (an empty retained message). Topics live
outside the device prefix: devices can neither read nor write them (see pitbox_auth.c).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

PRESENCE_ROOT = "pitbox/bridges"
ONLINE = b"online"
OFFLINE = b"offline"
CLEARED = b""


def presence_topic(group: str, client_id: str) -> str:
    """The retained presence topic of one instance."""
    return f"{PRESENCE_ROOT}/{group}/{client_id}"


def presence_filter(group: str) -> str:
    """The subscription that sees every instance of `group`."""
    return f"{PRESENCE_ROOT}/{group}/+"


def drain_topic(group: str, client_id: str) -> str:
    """Where a takeover sends itself the marker that says its peer's session is drained: two
    levels below the group, so `presence_filter` never matches it."""
    return f"{PRESENCE_ROOT}/{group}/drain/{client_id}"


def peer_of(group: str, topic: str) -> str | None:
    """The client id a presence topic names, else None."""
    head = f"{PRESENCE_ROOT}/{group}/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head):]
    return rest if rest and "/" not in rest else None


@dataclass(slots=True)
class _Peer:
    online: bool
    since_ns: int  # when we learnt its current status
    next_try_ns: int = 0


class Peers:
    """What this instance (`me`) knows of its group, and which takeovers are its duty.

    Clock: the caller's monotonic ns. `grace_ns` lets a peer that is only restarting under
    the same client id come back before anyone takes its session; `retry_ns` spaces out
    attempts after a takeover failed or was cut short (e.g. the peer came back and took
    its session)."""

    def __init__(self, me: str, *, grace_ns: int, retry_ns: int) -> None:
        self.me = me
        self.grace_ns, self.retry_ns = grace_ns, retry_ns
        self._peers: dict[str, _Peer] = {}

    def seen(self, peer: str, payload: bytes, now_ns: int) -> None:
        """A presence message: `online`, `offline`, or empty (cleared: forget the peer)."""
        if peer == self.me:
            return  # our own retained status, possibly an old incarnation's will
        if payload == CLEARED:
            self._peers.pop(peer, None)
            return
        online = payload != OFFLINE
        old = self._peers.get(peer)
        if old is None or old.online != online:
            self._peers[peer] = _Peer(online, now_ns)

    def online(self) -> list[str]:
        """Instances known to be online, this one included, sorted."""
        return sorted([self.me, *(p for p, s in self._peers.items() if s.online)])

    def offline(self) -> list[str]:
        return sorted(p for p, s in self._peers.items() if not s.online)

    def duty(self, peer: str) -> str:
        """Which online instance drains `peer` (every instance computes the same)."""
        online = self.online()
        return online[zlib.crc32(peer.encode()) % len(online)]

    def due(self, now_ns: int) -> list[str]:
        """Offline peers this instance should take over now. (One takeover runs at a time, and
        `Redundancy` asks only when none does: nothing here is being drained already.)"""
        return [p for p in self.offline()
                if self.duty(p) == self.me
                and now_ns - self._peers[p].since_ns >= self.grace_ns
                and now_ns >= self._peers[p].next_try_ns]

    def failed(self, peer: str, now_ns: int) -> None:
        """A takeover ended without draining: try again after `retry_ns` if still offline."""
        if peer in self._peers:
            self._peers[peer].next_try_ns = now_ns + self.retry_ns

    def drained(self, peer: str) -> None:
        """Its session is gone and its presence cleared."""
        self._peers.pop(peer, None)
