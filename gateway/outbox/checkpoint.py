"""WAL checkpoints off the gateway's loop: a thread with its own SQLite connection."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("pitbox.outbox")


class Checkpointer:
    """Every `every_s`, a passive WAL checkpoint on a connection of its own (a daemon thread),
    so the gateway's loop never stalls on one. A crash in between is harmless: SQLite replays
    the WAL at the next open."""

    def __init__(self, path: Path, every_s: float = 1.0) -> None:
        self.path, self.every_s = path, every_s
        self._stop = threading.Event()
        self.done = 0
        self._thread = threading.Thread(target=self._run, name="pitbox-outbox-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=5)
        except sqlite3.Error as exc:
            log.warning("outbox: no checkpoint thread (%s); the WAL grows until restart", exc)
            return
        try:
            while not self._stop.wait(self.every_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.done += 1
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.debug("outbox: checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
