"""Replay a pitbox capture file: into a running gateway over UDP, or straight into a pipeline.

Timing follows the receive times in the file, divided by `speed`; speed 0 means as fast as
possible. A progress line goes to stderr (a long replay should say where it is).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator

from gateway.recorder import Captured, iter_datagrams

Sink = Callable[[Captured], None]


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
    for item in iter_datagrams(path):
        if speed <= 0 or not item.ts_ns:
            yield 0.0, item
            continue
        if start_ts is None:
            start_ts = item.ts_ns
        yield (item.ts_ns - start_ts) / 1e9 / speed, item


def count(path: str) -> int:
    return sum(1 for _ in iter_datagrams(path))


def send_udp(path: str, host: str, port: int, *, speed: float = 1.0, progress: bool = True) -> int:
    """Send every datagram of `path` to host:port from one socket. Returns how many were sent."""
    total = count(path) if progress else 0
    bar = Progress(total) if progress else None
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        for due, item in schedule(path, speed):
            delay = start + due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(item.payload, (host, port))
            sent += 1
            if speed == 0 and sent % 50 == 0:
                time.sleep(0.001)  # loopback UDP drops what the receiver cannot take yet
            if bar:
                bar.update(sent)
    if bar:
        bar.finish(sent)
    return sent
