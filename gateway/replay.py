"""`pitbox replay`: a pitbox capture file into a running gateway over UDP (`send_udp`), or
straight into a gateway's pipeline (`replay_into`), the same way live datagrams go.

Timing follows the receive times in the file, divided by `speed`; speed 0 means as fast as
possible. A progress line goes to stderr (a long replay should say where it is), and a torn
tail (a capture cut by a pulled plug) is said in one log line.

Over UDP every recorded source gets its own socket (up to MAX_SOURCES): the gateway tells rigs
apart by source address and port, so a capture of many rigs sent from one socket would arrive
as one rig, and that rig's normalizer would drop every other rig's session as stale.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from gateway.recorder import Captured, iter_datagrams

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger("pitbox.replay")
Sink = Callable[[Captured], None]
MAX_SOURCES = 64
"""Sockets one UDP replay opens at most (20 rigs is a big venue); sources past that share
them, and the gateway then sees those rigs merged (logged)."""


class Progress:
    """`replay: 1200/4512 datagrams (26%)`, rewritten in place on a terminal, every 10 % otherwise."""

    def __init__(self, total: int, label: str = "replay") -> None:
        self.total, self.label = max(total, 1), label
        self.tty = sys.stderr.isatty()
        self._last_t = 0.0
        self._last_decile = -1

    def update(self, done: int) -> None:
        now = time.monotonic()
        decile = done * 10 // self.total
        if (self.tty and now - self._last_t >= 0.5) or (not self.tty and decile > self._last_decile):
            self._last_t, self._last_decile = now, decile
            end = "\r" if self.tty else "\n"
            print(f"{self.label}: {done}/{self.total} datagrams ({done * 100 // self.total}%)",
                  end=end, file=sys.stderr, flush=True)

    def finish(self, done: int) -> None:
        print(f"{self.label}: {done}/{self.total} datagrams, done", file=sys.stderr, flush=True)


def schedule(path: str, speed: float) -> Iterator[tuple[float, Captured]]:
    """(seconds after the start at which to release it, datagram) at `speed` × the recorded pace.
    Speed 0: everything due at once. The caller sleeps: a thread with time.sleep, a loop with
    asyncio.sleep."""
    start_ts: int | None = None
    for item in iter_datagrams(path, reader="replay"):  # a torn tail: one log line
        if speed <= 0 or not item.ts_ns:
            yield 0.0, item
            continue
        if start_ts is None:
            start_ts = item.ts_ns
        yield (item.ts_ns - start_ts) / 1e9 / speed, item


def count(path: str) -> int:
    """How many datagrams `path` holds (read here without a word: `schedule` says a torn tail)."""
    return sum(1 for _ in iter_datagrams(path, quiet=True))


class SourceSockets:
    """One UDP socket per recorded source ("ip:port"), opened when the source first sends,
    at most `limit`; closes them all on `close`."""

    def __init__(self, host: str, port: int, limit: int = MAX_SOURCES) -> None:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        self.family, self.limit = family, limit
        self.addr: tuple[Any, ...] = addr
        self._by_src: dict[str, socket.socket] = {}
        self._socks: list[socket.socket] = []

    def for_source(self, src: str) -> socket.socket:
        sock = self._by_src.get(src)
        if sock is None:
            if len(self._socks) < self.limit:
                sock = socket.socket(self.family, socket.SOCK_DGRAM)
                self._socks.append(sock)
            else:
                if len(self._by_src) == self.limit:
                    log.warning("replay: more than %d sources in the capture: the others "
                                "share sockets, so the gateway sees some rigs merged", self.limit)
                sock = self._socks[zlib.crc32(src.encode()) % self.limit]
            self._by_src[src] = sock
        return sock

    @property
    def sources(self) -> int:
        return len(self._by_src)

    def close(self) -> None:
        for sock in self._socks:
            sock.close()
        self._socks.clear()


def send_udp(path: str, host: str, port: int, *, speed: float = 1.0, progress: bool = True) -> int:
    """Send every datagram of `path` to host:port, each recorded source from its own socket.
    Returns how many were sent."""
    bar = Progress(count(path)) if progress else None
    sent = 0
    sockets = SourceSockets(host, port)
    try:
        start = time.monotonic()
        for due, item in schedule(path, speed):
            delay = start + due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sockets.for_source(item.src).sendto(item.payload, sockets.addr)
            sent += 1
            if speed == 0 and sent % 50 == 0:
                time.sleep(0.001)  # loopback UDP drops what the receiver cannot take yet
            if bar:
                bar.update(sent)
    finally:
        sockets.close()
    if bar:
        bar.finish(sent)
    return sent


async def replay_into(gw: Gateway, path: str, speed: float, drain_s: float) -> bool:
    """What `pitbox replay FILE` does: start `gw` (built with live=False, so its records are
    marked historical), feed `path` into its pipeline at `speed`, stop it, and return
    whether the outbox drained within `drain_s`."""
    await gw.start()
    bar = Progress(count(path))
    loop = asyncio.get_running_loop()
    start = loop.time()
    done = 0
    for due, item in schedule(path, speed):
        delay = start + due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif done % 200 == 0:
            await asyncio.sleep(0)  # let the uplink and commits run during a fast replay
        gw.pipeline.on_datagram(item.payload, item.src, item.ts_ns, time.monotonic_ns())
        done += 1
        bar.update(done)
    bar.finish(done)
    return await gw.stop(drain_s=drain_s)
