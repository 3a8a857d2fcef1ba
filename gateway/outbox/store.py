"""The SQLite store-and-forward: the source of truth for everything not yet acknowledged.

One connection, owned by the thread that made it (the gateway's asyncio loop). Records are
buffered in memory by `append` and written by `flush` in one transaction (a group commit,
called every `commit_window_ms` by the gateway), so the SD card sees few fsyncs. A row leaves
only through `ack`, which the uplink calls after the broker's PUBACK; the delete rides along
with the next group commit (losing it to a crash only means a resend, which the bridge
dedups). WAL mode with `synchronous=FULL`: a committed row survives `kill -9` and a pulled
plug, and a torn write is rolled back to the last whole commit.

The row id is the device's sequence number (AUTOINCREMENT: never reused, even after the newest
rows were deleted), so it doubles as the bridge's dedup key and orders each rig's records
across restarts.

Two lanes: rows committed before the uplink's latest (re)connect are the *backlog*, rows after
it are *live*. `claim` hands out live rows first, so a team sees its car now while an outage's
backlog drains behind, each lane in priority order, then sequence order (per rig, per kind,
that is capture order). Claims walk a cursor per (lane, priority) over the index instead of
re-reading what is already in flight.

A size budget (`budget_bytes`) is enforced at each commit: `eviction.plan` picks the oldest
rows of the cheapest kinds; every eviction is counted by kind in the file (`evictions` table).

The disk is a budget too: when less than `min_free_bytes` is left on the outbox's file system
(the SD card is shared with the journal and the OS), the outbox stops growing — each commit
evicts as much as it adds, by the same policy, reusing the freed pages of the file. If a
commit fails anyway (`OutboxFullError` when the disk is full, `OutboxError` when e.g. the card
went read-only), nothing is lost that was committed, and what was appended stays in memory for
the next try; past `MAX_PENDING_ROWS` the oldest buffered samples give way (counted as
evicted), never laps or events.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgpack
import sqlite_utils
from sqlite_migrate import Migrations

from gateway.errors import OutboxError, OutboxFullError
from gateway.outbox.checkpoint import Checkpointer
from gateway.outbox.eviction import EvictionLog, KindUsage, plan
from gateway.outbox.stats import ROW_OVERHEAD_BYTES, KindStats, stats_of
from gateway.records import RECORD_TYPES, Record, packable

log = logging.getLogger("pitbox.outbox")

MAX_PENDING_ROWS = 200_000  # ~60 MB of memory while commits fail: a long outage of the disk
DEFAULT_MIN_FREE_BYTES = 64 * 2**20
SQLITE_FULL = 13
DELETES_PER_COMMIT = 4000  # bounds one commit's time on the loop; ~16 commits/s = 64k rows/s
LIVE_GRACE_S = 2.0  # rows this fresh stay live across a reconnect
LIVE, BACKLOG = 0, 1
_NO_LIMIT = 2**62

migrations = Migrations("pitbox-outbox")


def m001_outbox(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: files written before migrations existed already have this table.
    db.execute("""CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        rig TEXT NOT NULL,
        session_id TEXT NOT NULL,
        priority INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        body BLOB NOT NULL)""")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority, seq)")


def m002_evictions(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS evictions (
        kind TEXT PRIMARY KEY,
        rows INTEGER NOT NULL,
        last_ns INTEGER NOT NULL)""")


def m003_priorities(db: sqlite_utils.Database) -> None:
    # Events and stint states had priorities 1 and 2 (events tied with laps); since m003 the
    # order is session 0 < lap 1 < event 2 < state 3 < sample 5. Rows buffered before keep
    # their place in each kind's order (by seq). Idempotent, as every migration here.
    db.execute("UPDATE outbox SET priority = 3 WHERE kind = 'state' AND priority = 2")
    db.execute("UPDATE outbox SET priority = 2 WHERE kind = 'event' AND priority = 1")


for _step in (m001_outbox, m002_evictions, m003_priorities):  # in this order, once each
    migrations(name=_step.__name__)(_step)


class Row(NamedTuple):
    seq: int
    kind: str
    rig: str
    session_id: str
    priority: int
    ts_ns: int
    body: bytes  # msgpack of the record's dict


INSERT_ROWS = 100  # rows per INSERT statement: one multi-row VALUES beats executemany


@functools.cache
def _insert_sql(n: int) -> str:
    return ("INSERT INTO outbox (kind, rig, session_id, priority, ts_ns, body) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?)"] * n))


def _priority_of(kind: str) -> int:
    """The priority rows of `kind` carry (the index the eviction walks is by priority)."""
    cls = RECORD_TYPES.get(kind)
    return cls.PRIORITY if cls is not None else Record.PRIORITY


def _size(body: bytes) -> int:
    return len(body) + ROW_OVERHEAD_BYTES


class Outbox:
    """`append` → `flush` (commit) → `claim(n)` → `ack(rows)` after PUBACK, or `release(rows)`.

    `budget_bytes=None` means no size limit; `now` (monotonic seconds) paces eviction logs.
    `free_bytes` says what is left on the file system (default: statvfs of the file's folder).
    """

    def __init__(self, path: str | Path, *, budget_bytes: int | None = None,
                 min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
                 free_bytes: Callable[[], int] | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.budget_bytes = budget_bytes
        self.min_free_bytes = min_free_bytes
        self._free_bytes = free_bytes or functools.partial(_free_bytes_at, self.path.parent)
        self._disk_low = False
        self._now = now
        try:
            self.db = sqlite_utils.Database(str(path))
            self.conn = self.db.conn
            self.conn.execute("PRAGMA busy_timeout=5000")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            # Checkpoints (copying the WAL back into the file) run on a thread of their own
            # with its own connection, not inside a commit on the gateway's loop.
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            # Every migration is idempotent (IF NOT EXISTS): a crash between one and its
            # record in _sqlite_migrations just runs it again at the next open.
            migrations.apply(self.db)
            usage = self.conn.execute(
                "SELECT kind, count(*), coalesce(sum(length(body)), 0) FROM outbox GROUP BY kind"
            ).fetchall()
            self._last_seq = self._max_seq()
            db_prios = {p for (p,) in self.conn.execute("SELECT DISTINCT priority FROM outbox")}
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        self._usage: dict[str, list[int]] = {
            k: [n, b + n * ROW_OVERHEAD_BYTES] for k, n, b in usage}
        self._priorities = sorted({cls.PRIORITY for cls in RECORD_TYPES.values()} | db_prios)
        self._pending: list[tuple[str, str, str, int, int, bytes]] = []
        self._claimed: set[int] = set()
        self._acked: dict[int, tuple[str, int]] = {}  # seq -> (kind, size), deleted at next flush
        self._cursor: dict[tuple[int, int], int] = {}
        self.live_from = self._last_seq  # what is already buffered at open is backlog
        self.backlog_marks: deque[int] = deque([self.live_from], maxlen=1000)  # lane history
        self._commits: deque[tuple[float, int]] = deque(maxlen=256)  # (when, last seq) per flush
        self._commits_base = self.live_from  # last seq before the oldest remembered commit
        self.evictions = EvictionLog()
        self._checkpointer = Checkpointer(self.path)
        self._packer = msgpack.Packer(use_bin_type=True)

    # -- writing -----------------------------------------------------------------------------
    def append(self, records: Iterable[Record]) -> None:
        """Buffer records for the next `flush` (nothing is durable before it)."""
        pack, pending = self._packer.pack, self._pending
        for rec in records:
            pending.append((rec.KIND, rec.rig, rec.session_id, rec.PRIORITY, rec.ts_ns,
                            pack(packable(rec))))

    def flush(self) -> int:
        """Commit what `append` buffered, the deletes of acked rows, and any evictions the
        budget needs, in one transaction. Returns how many rows were inserted.

        Called every commit window even when idle, so it also says evictions that were
        counted in the last minute but not yet logged (a cheap check of a counter)."""
        line = self.evictions.due(self._now())
        if line:
            log.warning("%s", line)
        if not self._pending and not self._acked:
            return 0
        rows, self._pending = self._pending, []
        cap = self._disk_cap()
        acked = self._acked
        if len(acked) > DELETES_PER_COMMIT:  # a drain acks fast: spread the deletes out
            keep = dict(itertools.islice(acked.items(), DELETES_PER_COMMIT, None))
            acked = dict(itertools.islice(acked.items(), DELETES_PER_COMMIT))
        else:
            keep = {}
        self._acked = keep
        evicted: list[tuple[str, list[tuple[int, int]]]] = []
        accounted = False
        try:
            with self.conn:
                if cap is not None:  # low on disk: make room first, so inserts reuse the pages
                    self._evict_over_budget(evicted, cap - sum(_size(r[5]) for r in rows))
                for start in range(0, len(rows), INSERT_ROWS):
                    chunk = rows[start:start + INSERT_ROWS]
                    self.conn.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])
                if acked:
                    self.conn.executemany("DELETE FROM outbox WHERE seq = ?",
                                          [(s,) for s in acked])
                self._account(rows, acked, sign=1)
                accounted = True
                self._evict_over_budget(evicted, cap)
                last_seq = self._max_seq() if rows else self._last_seq
        except sqlite3.Error as exc:
            if accounted:  # roll the counters back with the transaction
                self._account(rows, acked, sign=-1)
            for kind, victims in evicted:
                self._usage_add(kind, len(victims), sum(size for _, size in victims))
            self._pending = rows + self._pending  # nothing was committed: keep for the next try
            self._acked.update(acked)
            self._shed_pending()
            full = getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL
            error = OutboxFullError if full else OutboxError
            raise error(f"outbox commit failed{' (the disk is full)' if full else ''}: "
                        f"{exc}; {len(self._pending)} records wait in memory") from exc
        self._last_seq = last_seq
        if cap is not None:
            # Low on disk: checkpoint now, so the WAL restarts small at the next commit
            # instead of growing for a second into the space that is left.
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.debug("outbox: checkpoint skipped: %s", exc)
        if rows:
            if len(self._commits) == self._commits.maxlen:
                self._commits_base = self._commits[0][1]
            self._commits.append((self._now(), last_seq))
        for kind, victims in evicted:
            line = self.evictions.note(kind, len(victims), self._now())
            if line:
                log.warning("%s", line)
        return len(rows)

    def _disk_cap(self) -> int | None:
        """Below `min_free_bytes` free: the size the outbox may not grow past (what it holds
        now), else None. A file system that cannot say is taken as roomy."""
        try:
            free = self._free_bytes()
        except OSError:
            return None
        low = free < self.min_free_bytes
        if low != self._disk_low:
            self._disk_low = low
            if low:
                log.warning("outbox: %.0f MB left on the disk (keeping %.0f MB free): the outbox "
                            "stops growing, new records push out the oldest samples",
                            free / 2**20, self.min_free_bytes / 2**20)
            else:
                log.info("outbox: disk space is back (%.0f MB free)", free / 2**20)
        return self.used_bytes() if low else None

    def _shed_pending(self) -> None:
        """While commits fail, memory holds what was appended: past MAX_PENDING_ROWS the oldest
        samples go (counted), so a long disk failure cannot take the box's memory."""
        over = len(self._pending) - MAX_PENDING_ROWS
        if over <= 0:
            return
        keep, shed = [], 0
        for row in self._pending:
            if shed < over and row[0] == "sample":
                shed += 1
            else:
                keep.append(row)
        self._pending = keep
        if shed:
            line = self.evictions.note("sample", shed, self._now())
            log.warning("outbox: %d buffered samples dropped from memory while commits fail%s",
                        shed, f"; {line}" if line else "")

    def _account(self, rows: Sequence[tuple[str, str, str, int, int, bytes]],
                 acked: dict[int, tuple[str, int]], sign: int) -> None:
        added: dict[str, list[int]] = {}  # kind -> rows, body bytes: summed first (hot path)
        for kind, _, _, _, _, body in rows:
            a = added.get(kind)
            if a is None:
                a = added[kind] = [0, 0]
            a[0] += 1
            a[1] += len(body)
        for kind, (n, size) in added.items():
            self._usage_add(kind, sign * n, sign * (size + n * ROW_OVERHEAD_BYTES))
        for kind, size in acked.values():
            self._usage_add(kind, -sign, -sign * size)

    def _usage_add(self, kind: str, rows: int, size: int) -> None:
        u = self._usage.setdefault(kind, [0, 0])
        u[0] += rows
        u[1] += size

    def _evict_over_budget(self, done: list[tuple[str, list[tuple[int, int]]]],
                           cap: int | None = None) -> None:
        """Inside flush's transaction: delete the oldest rows the policy names, re-measuring
        until within budget (and within `cap`, the disk's). Rows in flight to the broker, and
        rows acked but not yet deleted, are left alone. Appends (kind, victims) to `done`."""
        budget = self.budget_bytes if cap is None else \
            cap if self.budget_bytes is None else min(cap, self.budget_bytes)
        if budget is None:
            return
        busy: set[int] | None = None
        for _ in range(10):  # each round frees at least one row; the estimate is rarely off
            steps = plan(self.usage(), budget)
            if not steps:
                break
            if busy is None:  # only when something must go: it can be 20,000 seqs in a drain
                busy = self._claimed | self._acked.keys()
            freed = 0
            for kind, n in steps:
                victims = [(seq, size + ROW_OVERHEAD_BYTES) for seq, size in self.conn.execute(
                    "SELECT seq, length(body) FROM outbox WHERE priority = ? AND kind = ?"
                    " ORDER BY seq LIMIT ?", (_priority_of(kind), kind, n + len(busy)))
                    if seq not in busy][:n]
                if not victims:
                    continue
                self.conn.executemany("DELETE FROM outbox WHERE seq = ?",
                                      [(s,) for s, _ in victims])
                self.conn.execute(
                    "INSERT INTO evictions (kind, rows, last_ns) VALUES (?, ?, ?) ON CONFLICT"
                    " (kind) DO UPDATE SET rows = rows + excluded.rows, last_ns = excluded.last_ns",
                    (kind, len(victims), time.time_ns()))
                self._usage_add(kind, -len(victims), -sum(size for _, size in victims))
                done.append((kind, victims))
                freed += len(victims)
            if not freed:
                break  # everything left is in flight

    def _max_seq(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    # -- handing out -------------------------------------------------------------------------
    def mark_backlog(self) -> None:
        """What was committed more than `LIVE_GRACE_S` ago becomes backlog; the rest, and
        everything later, is live. The uplink calls this at each (re)connect, so a blip of a
        second does not demote what the team is watching right now."""
        cutoff = self._now() - LIVE_GRACE_S
        boundary = self._commits_base
        for at, seq in self._commits:
            if at > cutoff:
                break
            boundary = seq
        self.live_from = max(self.live_from, boundary)
        self.backlog_marks.append(self.live_from)
        for (lane, prio), cur in list(self._cursor.items()):
            if lane == LIVE:
                self._cursor[(lane, prio)] = max(cur, self.live_from)

    def claim(self, n: int, *, lane: int | None = None) -> list[Row]:
        """Up to `n` unclaimed rows: live lane before backlog (or just `lane`), most important
        kind first, oldest first within it."""
        out: list[Row] = []
        for ln in (LIVE, BACKLOG) if lane is None else (lane,):
            for prio in self._priorities:
                if len(out) >= n:
                    return out
                out += self._claim_from(ln, prio, n - len(out))
        return out

    def _claim_from(self, lane: int, prio: int, n: int) -> list[Row]:
        if lane == LIVE:
            lo, hi = max(self._cursor.get((lane, prio), 0), self.live_from), _NO_LIMIT
        else:
            lo, hi = self._cursor.get((lane, prio), 0), self.live_from
        got: list[Row] = []
        claimed, acked = self._claimed, self._acked
        for _ in range(1000):  # bounded: each round moves the cursor past what it read
            if lo >= hi or len(got) >= n:
                break
            limit = n - len(got)
            fetched = self.conn.execute(
                "SELECT seq, kind, rig, session_id, priority, ts_ns, body FROM outbox"
                " WHERE priority = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (prio, lo, hi, limit)).fetchall()
            if not fetched:
                break
            got.extend(Row(*r) for r in fetched if r[0] not in claimed and r[0] not in acked)
            lo = fetched[-1][0]
            if len(fetched) < limit:
                break
        self._cursor[(lane, prio)] = lo
        self._claimed.update(r.seq for r in got)
        return got

    def ack(self, rows: Sequence[Row]) -> None:
        """The broker has them: they are deleted with the next group commit."""
        for r in rows:
            if r.seq in self._claimed:
                self._claimed.discard(r.seq)
                self._acked[r.seq] = (r.kind, _size(r.body))

    def release(self, rows: Sequence[Row]) -> None:
        """Not delivered: hand them out again, in their place."""
        for r in rows:
            self._claimed.discard(r.seq)
            key = (LIVE if r.seq > self.live_from else BACKLOG, r.priority)
            self._cursor[key] = min(self._cursor.get(key, 0), r.seq - 1)

    # -- looking -----------------------------------------------------------------------------
    def usage(self) -> dict[str, KindUsage]:
        """kind → rows and bytes against the budget, committed and not yet deleted."""
        return {k: KindUsage(n, b) for k, (n, b) in self._usage.items() if n > 0}

    def used_bytes(self) -> int:
        return sum(b for _, b in self._usage.values())

    def pending(self) -> int:
        """Rows committed and not yet acknowledged (claimed or not)."""
        return sum(n for n, _ in self._usage.values()) - len(self._acked)

    def stats(self) -> dict[str, KindStats]:
        """kind → rows, oldest capture time, bytes and evictions ever (read from the file)."""
        return stats_of(self.conn)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._checkpointer.stop()
            self.conn.close()


def _free_bytes_at(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize
