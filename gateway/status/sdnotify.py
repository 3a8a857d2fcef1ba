"""systemd's notify protocol in a few lines (no dependency): READY, WATCHDOG, STATUS, STOPPING.

Without $NOTIFY_SOCKET (not started by systemd, or tests) every call is a no-op. It is called
on the gateway's event loop, so it never blocks for long: a line the reader has no room for
within SEND_TIMEOUT_S is dropped (the next WATCHDOG=1 follows within a second; 0.1 s of
capture waits in the socket's receive buffer meanwhile).
"""

from __future__ import annotations

import os
import socket

SEND_TIMEOUT_S = 0.1


def notify(state: str) -> bool:
    """Send e.g. "READY=1" or "WATCHDOG=1" to systemd. Returns whether it was sent."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError:  # systemd gone, restarting or busy: capture must not stop over a status line
        return False
    return True


def ping_interval_s(*, most_s: float = 1.0) -> float:
    """How often to send WATCHDOG=1: half of the $WATCHDOG_USEC systemd gives the service (as
    sd_watchdog_enabled(3) advises), at most `most_s`. Without it, `most_s`."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        usec = 0
    return min(most_s, usec / 2e6) if usec > 0 else most_s
