"""What the outbox file holds, by kind: rows, bytes, oldest capture time, evictions ever.

Shared by `Outbox.stats` (the gateway's own connection) and `read_stats`, which
`pitbox outbox stats` uses: it opens the file read-only, so looking never creates, migrates
or writes an outbox, and a running gateway's file may be read meanwhile (WAL allows it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

from gateway.errors import OutboxError

ROW_OVERHEAD_BYTES = 48  # columns, row header and index entry of one row, roughly


class KindStats(NamedTuple):
    rows: int
    oldest_ns: int | None  # capture wall time of the oldest buffered row
    bytes: int
    evicted: int  # rows of this kind ever evicted from this file


def read_stats(path: str | Path) -> dict[str, KindStats]:
    """The stats of the outbox file at `path`, opened read-only."""
    if not Path(path).is_file():
        raise OutboxError(f"no outbox at {path} (wrong --config, or the gateway never ran here)")
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
    try:
        return stats_of(conn)
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read outbox {path}: {exc}") from exc
    finally:
        conn.close()


def stats_of(conn: sqlite3.Connection) -> dict[str, KindStats]:
    """kind → rows, oldest capture time, bytes (with the per-row overhead the budget counts)
    and evictions ever, read through `conn`."""
    # A file from before m004 (read-only here, so not migrated) has one record per row.
    columns = {name for _, name, *_ in conn.execute("PRAGMA table_info(outbox)")}
    records = "sum(n)" if "n" in columns else "count(*)"
    cur = conn.execute(
        f"SELECT kind, {records}, min(ts_ns), coalesce(sum(length(body)), 0) FROM outbox"
        " GROUP BY kind")
    out = {kind: KindStats(n, oldest, size + n * ROW_OVERHEAD_BYTES, 0)
           for kind, n, oldest, size in cur.fetchall()}
    has_evictions = conn.execute(  # a file from before the evictions table (m002)
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evictions'").fetchone()
    for kind, rows in conn.execute("SELECT kind, rows FROM evictions") if has_evictions else ():
        out[kind] = out.get(kind, KindStats(0, None, 0, 0))._replace(evicted=rows)
    return out
