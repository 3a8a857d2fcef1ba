"""The SQLite store-and-forward: the source of truth for everything not yet acknowledged.

One connection, owned by the thread that made it (the gateway's asyncio loop). Records are
buffered in memory by `append` and written by `flush` in one transaction (a group commit,
called every `commit_window_ms` by the pipeline), so the SD card sees few fsyncs. A row leaves
only through `ack`, which the uplink calls after the broker's PUBACK. WAL mode with
`synchronous=FULL`: a committed row survives a pulled plug, a torn write is rolled back.

The row id is the device's sequence number (AUTOINCREMENT: never reused, even after the
newest rows were deleted), so it doubles as the bridge's dedup key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgpack
import sqlite_utils

from gateway.errors import OutboxError
from gateway.records import Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    rig TEXT NOT NULL,
    session_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority, seq);
"""


class Row(NamedTuple):
    seq: int
    kind: str
    rig: str
    session_id: str
    priority: int
    ts_ns: int
    body: bytes  # msgpack of the record's dict


class Outbox:
    """`append` → `flush` (commit) → `claim(n)` → `ack(rows)` after PUBACK, or `release(rows)`."""

    def __init__(self, path: str | Path) -> None:
        try:
            self.db = sqlite_utils.Database(str(path))
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        self.path = Path(path)
        self._pending: list[tuple[str, str, str, int, int, bytes]] = []
        self._claimed: set[int] = set()

    def append(self, records: Iterable[Record]) -> None:
        for rec in records:
            body = msgpack.packb(rec.to_dict(), use_bin_type=True)
            self._pending.append((rec.KIND, rec.rig, rec.session_id, rec.PRIORITY, rec.ts_ns, body))

    def flush(self) -> int:
        """Commit what `append` buffered, in one transaction. Returns how many rows."""
        if not self._pending:
            return 0
        rows, self._pending = self._pending, []
        try:
            with self.db.conn:
                self.db.conn.executemany(
                    "INSERT INTO outbox (kind, rig, session_id, priority, ts_ns, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            self._pending = rows + self._pending  # nothing was committed: keep them for the next try
            raise OutboxError(f"outbox commit failed: {exc}") from exc
        return len(rows)

    def claim(self, n: int) -> list[Row]:
        """Up to `n` unclaimed rows, most important kind first, oldest first within it."""
        cur = self.db.conn.execute(
            "SELECT seq, kind, rig, session_id, priority, ts_ns, body FROM outbox"
            " WHERE seq NOT IN (SELECT value FROM json_each(?))"
            " ORDER BY priority, seq LIMIT ?",
            (json.dumps(sorted(self._claimed)), n),
        )
        rows = [Row(*r) for r in cur.fetchall()]
        self._claimed.update(r.seq for r in rows)
        return rows

    def ack(self, rows: Sequence[Row]) -> None:
        """The broker has them: delete. Called only after PUBACK."""
        seqs = [(r.seq,) for r in rows]
        try:
            with self.db.conn:
                self.db.conn.executemany("DELETE FROM outbox WHERE seq = ?", seqs)
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox ack failed: {exc}") from exc
        self._claimed.difference_update(s for (s,) in seqs)

    def release(self, rows: Sequence[Row]) -> None:
        """Not delivered: hand them out again."""
        self._claimed.difference_update(r.seq for r in rows)

    def pending(self) -> int:
        """Rows committed and not yet acknowledged (claimed or not)."""
        return int(self.db.conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def stats(self) -> dict[str, tuple[int, int | None]]:
        """kind → (rows, oldest capture time ns)."""
        cur = self.db.conn.execute("SELECT kind, count(*), min(ts_ns) FROM outbox GROUP BY kind")
        return {kind: (count, oldest) for kind, count, oldest in cur.fetchall()}

    def close(self) -> None:
        self.flush()
        self.db.conn.close()
