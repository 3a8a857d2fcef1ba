"""systemd's notify protocol in a few lines (no dependency): READY, WATCHDOG, STATUS, STOPPING.

Without $NOTIFY_SOCKET (not started by systemd, or tests) every call is a no-op.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send e.g. "READY=1" or "WATCHDOG=1" to systemd. Returns whether it was sent."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace socket
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError:  # systemd gone or restarting: capture must not stop over a status line
        return False
    return True
