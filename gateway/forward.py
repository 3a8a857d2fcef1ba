"""Re-send every datagram, unchanged, to other telemetry apps on the LAN (the game sends to one
address only, and the box took it).

One non-blocking, connected socket per target: `send` either hands the datagram to the kernel at
once or fails at once (full buffer, unreachable, an ICMP refusal from an earlier send). A socket
per target because the kernel reports an ICMP refusal on the next send of the same socket: a
shared one would charge a dead app's refusals to a live one. Failures are counted per target and
logged once a minute, and never slow capture down.

Nor does resolving a target's name: a numeric address is used at once, but a host name (say
`simhub-pc.local`, which resolves only once that PC is up, or a typo that never will) is
resolved by a background thread, `pitbox-forward-resolve`, retried every RESOLVE_RETRY_S until
it resolves. So is a numeric address whose socket cannot be connected (no route to it yet, say
the LAN is still down at boot). Until then its copies are counted as failed, and a warning
naming the target says why (its name does not resolve, or it cannot be reached), once a
minute. A bad target costs the box nothing else: capture starts at once either way.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pitbox.forward")
LOG_EVERY_NS = 60 * 10**9
RESOLVE_RETRY_S = 30.0

Resolver = Callable[..., list[tuple[Any, ...]]]
"""`socket.getaddrinfo`'s shape (host, port, type=, flags=); injectable for tests."""


def parse_target(text: str) -> tuple[str, int]:
    """"host:port" → (host, port); ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"forward target {text!r} must be host:port, e.g. 127.0.0.1:20778")
    return host.strip("[]"), int(port)


class _Target:
    __slots__ = ("host", "key", "port", "sock")

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.key = host, port, f"{host}:{port}"
        self.sock: socket.socket | None = None  # set once connected (maybe by the resolver thread)


class Forwarder:
    """Copies datagrams to `targets` ((host, port) pairs). `sent` / `failed` count per
    "host:port"; a target not connected (yet: its name does not resolve, or there is no
    route to it) counts every copy as failed."""

    def __init__(self, targets: list[tuple[str, int]], *, resolve: Resolver = socket.getaddrinfo,
                 retry_s: float = RESOLVE_RETRY_S) -> None:
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._resolve = resolve
        self._closed = threading.Event()
        self._last_log_ns = 0
        self._targets = [_Target(host, port) for host, port in targets]
        pending = [t for t in self._targets if self._connect(t, socket.AI_NUMERICHOST)]
        self._resolver: threading.Thread | None = None
        if pending:
            self._resolver = threading.Thread(target=self._retry, args=(pending, retry_s),
                                              name="pitbox-forward-resolve", daemon=True)
            self._resolver.start()

    def _connect(self, target: _Target, flags: int) -> str:
        """Resolve and connect `target`: "" when done, else why not, for the log."""
        try:
            family, _, _, _, addr = self._resolve(target.host, target.port,
                                                  type=socket.SOCK_DGRAM, flags=flags)[0]
        except (OSError, UnicodeError) as exc:  # gaierror, or a name IDNA cannot encode
            return f"cannot resolve target {target.key} ({exc})"
        sock: socket.socket | None = None
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(addr)  # UDP: no packet goes out, the kernel only picks a route
        except OSError as exc:  # no route (a LAN not up yet), a broadcast address, …
            if sock is not None:
                sock.close()
            at = "" if addr[0] == target.host else f" at {addr[0]}"
            return f"cannot reach target {target.key}{at} ({exc.strerror or exc})"
        if self._closed.is_set():  # closed while resolving: nobody would close it
            sock.close()
        else:
            target.sock = sock
        return ""

    def _retry(self, pending: list[_Target], retry_s: float) -> None:
        """The resolver thread: retry the targets not connected yet (names that do not resolve,
        addresses without a route) until each connects or the forwarder closes."""
        logged: dict[str, int] = {}
        while pending and not self._closed.is_set():
            for target in list(pending):
                why = self._connect(target, 0)
                if not why:
                    pending.remove(target)
                    if target.key in logged:
                        log.info("forward: %s is reachable now; copies go there", target.key)
                    continue
                now = time.monotonic_ns()
                if now - logged.get(target.key, -LOG_EVERY_NS) >= LOG_EVERY_NS:
                    logged[target.key] = now
                    log.warning("forward: %s; its copies are dropped (%d so far) and it is "
                                "retried every %.0f s", why, self.failed[target.key], retry_s)
            if pending:
                self._closed.wait(retry_s)

    def send(self, payload: bytes) -> None:
        for target in self._targets:
            sock = target.sock
            if sock is None:  # not connected (yet): the resolver thread says why
                self.failed[target.key] += 1
                continue
            try:
                sock.send(payload)
            except OSError as exc:  # full, refused, unreachable: the copy is dropped, not capture
                self.failed[target.key] += 1
                self._maybe_log(target.key, exc)
            else:
                self.sent[target.key] += 1

    def _maybe_log(self, key: str, exc: OSError) -> None:
        now = time.monotonic_ns()
        if now - self._last_log_ns >= LOG_EVERY_NS:
            self._last_log_ns = now
            log.warning("forward: cannot send to %s (%s); %d copies dropped so far",
                        key, exc.strerror or exc, self.failed[key])

    def close(self) -> None:
        """Close the sockets; a resolver still waiting on a name gives up (it is a daemon
        thread: a lookup blocked in the resolver never holds the box's exit)."""
        self._closed.set()
        for target in self._targets:
            sock, target.sock = target.sock, None
            if sock is not None:
                sock.close()
