"""The updater's view of the gateway: the health file it writes (JSON, replaced atomically,
under /run). Three questions: is a session live (then wait), is the uplink connected now (then
the new version must connect too), and is the new version healthy?

`verdict` is pure; `wait_healthy` polls the file with an injected clock until a verdict or the
deadline. The gateway's report carries its own version, so the old process's last report can
never pass for the new one's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STALE_AFTER_S = 30.0  # the gateway rewrites the file every second; older means it is not running


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def fresh_report(path: Path | None, *, now_s: Callable[[], float] = time.time
                 ) -> dict[str, Any] | None:
    """The report of a gateway that is running now; None if missing or stale (file age compares
    two readings of the same clock, so an unsynced clock does not matter)."""
    if path is None:
        return None
    try:
        age_s = now_s() - path.stat().st_mtime
    except OSError:
        return None
    return read_report(path) if -5.0 <= age_s <= STALE_AFTER_S else None


def session_live(path: Path | None, *, now_s: Callable[[], float] = time.time) -> bool:
    """True if a running gateway says data is flowing. A stale or missing report is no session."""
    doc = fresh_report(path, now_s=now_s)
    return bool(doc and doc.get("session_live"))


def uplink_connected_now(path: Path | None, *, now_s: Callable[[], float] = time.time) -> bool:
    """True if the running gateway's uplink is connected: this venue is online, so a new
    version must connect too before it is kept."""
    doc = fresh_report(path, now_s=now_s)
    return bool(doc and doc.get("uplink_connected") is True)


def verdict(doc: dict[str, Any] | None, version: str, waited_s: float,
            uplink_grace_s: float, *, need_uplink: bool = False) -> tuple[str, str]:
    """("ok" | "wait" | "fail", why). Healthy = READY and uplink connected, or — once the
    grace period is over, at a venue that was offline before the update (not `need_uplink`) —
    READY with capture and commits running."""
    if doc is None:
        return "wait", "no health report yet"
    if doc.get("version") != version:
        return "wait", f"the running version is {doc.get('version')!r}, not {version}"
    if not doc.get("ready"):
        return "wait", "not ready yet"
    if doc.get("healthy") is not True:
        return "fail", f"it reports {doc.get('state', 'unhealthy')}"
    if doc.get("uplink_connected"):
        return "ok", "ready, uplink connected"
    if need_uplink:
        return "wait", "ready, but the uplink the previous version had is not connected"
    if waited_s >= uplink_grace_s:
        return "ok", f"ready and capturing; uplink still offline after {waited_s:.0f} s"
    return "wait", "ready, waiting for the uplink"


def wait_healthy(path: Path, version: str, *, deadline_s: float, uplink_grace_s: float,
                 need_uplink: bool = False, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str]:
    start = clock()
    why = "no health report yet"
    for _ in range(1_000_000):  # bounded by the deadline; the count only guards a frozen clock
        waited = clock() - start
        result, why = verdict(read_report(path), version, waited, uplink_grace_s,
                              need_uplink=need_uplink)
        if result != "wait":
            return result == "ok", why
        if waited >= deadline_s:
            break
        sleep(poll_s)
    return False, f"no healthy report within {deadline_s:.0f} s ({why})"
