"""Re-send every datagram, unchanged, to other telemetry apps on the LAN (the game sends to one
address only, and the box took it).

One non-blocking, connected socket per target: `send` either hands the datagram to the kernel at
once or fails at once (full buffer, unreachable, an ICMP refusal from an earlier send). A socket
per target because the kernel reports an ICMP refusal on the next send of the same socket: a
shared one would charge a dead app's refusals to a live one. Failures are counted per target and
logged once a minute, and never slow capture down.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter

log = logging.getLogger("pitbox.forward")
LOG_EVERY_NS = 60 * 10**9


def parse_target(text: str) -> tuple[str, int]:
    """"host:port" → (host, port); ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"forward target {text!r} must be host:port, e.g. 127.0.0.1:20778")
    return host.strip("[]"), int(port)


class Forwarder:
    def __init__(self, targets: list[tuple[str, int]]) -> None:
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._socks: list[tuple[str, socket.socket]] = []
        self._last_log_ns = 0
        for host, port in targets:
            family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(addr)
            self._socks.append((f"{host}:{port}", sock))

    def send(self, payload: bytes) -> None:
        for key, sock in self._socks:
            try:
                sock.send(payload)
            except OSError as exc:  # full, refused, unreachable: the copy is dropped, not capture
                self.failed[key] += 1
                self._maybe_log(key, exc)
            else:
                self.sent[key] += 1

    def _maybe_log(self, key: str, exc: OSError) -> None:
        now = time.monotonic_ns()
        if now - self._last_log_ns >= LOG_EVERY_NS:
            self._last_log_ns = now
            log.warning("forward: cannot send to %s (%s); %d copies dropped so far",
                        key, exc.strerror or exc, self.failed[key])

    def close(self) -> None:
        for _, sock in self._socks:
            sock.close()
        self._socks.clear()
