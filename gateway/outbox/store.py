"""The SQLite store-and-forward: the source of truth for everything not yet acknowledged.

One connection, owned by the thread that made it (the gateway's asyncio loop). Records are
buffered in memory by `append` and written by `flush` in one transaction (a group commit,
called every `commit_window_ms` by the gateway), so the SD card sees few fsyncs. A row leaves
only through `ack`, which the uplink calls after the broker's PUBACK; the delete rides along
with the next group commit (losing it to a crash only means a resend, which the bridge
dedups). WAL mode with `synchronous=FULL`: a committed row survives `kill -9` and a pulled
plug, and a torn write is rolled back to the last whole commit.

Every record has the device's sequence number (`seq`; never reused, even after the newest rows
were deleted: the table is AUTOINCREMENT and a row's id is its last record's seq), the
bridge's dedup key, which orders each rig's records across restarts. Records are stored as
the msgpack arrays wire version 3 sends (`schema`), and a rig's samples of one commit share a
row (up to `chunks.MAX_RECORDS`; every other record has a row of its own): at saturation one
SQLite row per record cost more than the disk. Claims, acks and releases go record by record;
a row is deleted once all its records are acked. A plug pulled at any moment is tested on the
writes SQLite really made (tests/faults/test_power_loss.py).

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
evicted), never laps or events. Below the floor, eviction frees whole rows of samples, a few
more than it must.
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
from typing import Any, NamedTuple

import msgpack
import sqlite_utils

from gateway.errors import OutboxError, OutboxFullError
from gateway.outbox import chunks
from gateway.outbox.checkpoint import Checkpointer
from gateway.outbox.eviction import EvictionLog, KindUsage, plan
from gateway.outbox.schema import MAP_SHAPE, load_shapes, migrations
from gateway.outbox.stats import ROW_OVERHEAD_BYTES, KindStats, stats_of
from gateway.records import RECORD_TYPES, Record, values_of

log = logging.getLogger("pitbox.outbox")

MAX_PENDING_ROWS = 200_000  # ~60 MB of memory while commits fail: a long outage of the disk
DEFAULT_MIN_FREE_BYTES = 64 * 2**20
SQLITE_FULL = 13
DELETES_PER_COMMIT = 4000  # rows; bounds one commit's time on the loop
LIVE_GRACE_S = 2.0  # rows this fresh stay live across a reconnect
LIVE, BACKLOG = 0, 1
_NO_LIMIT = 2**62
_CLAIM_PAGE = 256  # stored rows read per claim query

__all__ = ["BACKLOG", "LIVE", "Outbox", "Row", "migrations"]


class Row(NamedTuple):
    """One record as the outbox hands it out."""

    seq: int
    kind: str
    rig: str
    session_id: str
    priority: int
    ts_ns: int  # of the first record of its stored row
    body: bytes  # msgpack: an array of the values `fields` names (a map when `fields` is None)
    chunk: int = 0  # the seq of the stored row holding it (its last record's); 0: `seq`
    chunk_rows: int = 1  # records in that stored row
    fields: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record's fields by name (for looking; the uplink sends `body` as it is)."""
        value = msgpack.unpackb(self.body, raw=False)
        return dict(value) if self.fields is None else dict(zip(self.fields, value, strict=True))


INSERT_ROWS = 100  # rows per INSERT statement: one multi-row VALUES beats executemany
_COLUMNS = "seq, n, kind, rig, session_id, priority, ts_ns, shape, body"


@functools.cache
def _insert_sql(n: int) -> str:
    return (f"INSERT INTO outbox ({_COLUMNS}) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * n))


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
        self._cap_bytes = 0
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
                "SELECT kind, coalesce(sum(n), 0), coalesce(sum(length(body)), 0) FROM outbox"
                " GROUP BY kind").fetchall()
            self._shape_of, self._fields = load_shapes(self.conn)
            self._last_seq = self._max_seq()
            db_prios = {p for (p,) in self.conn.execute("SELECT DISTINCT priority FROM outbox")}
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        self._usage: dict[str, list[int]] = {
            k: [n, b + n * ROW_OVERHEAD_BYTES] for k, n, b in usage}
        self._priorities = sorted({cls.PRIORITY for cls in RECORD_TYPES.values()} | db_prios)
        self._pending: list[chunks.Pending] = []
        self._claimed: dict[int, int] = {}  # seq of a record handed out -> its stored row's
        # Stored rows some of whose records are acked: row -> [records not yet acked, bytes
        # acked], and those records' seqs (never handed out again).
        self._part_acked: dict[int, list[int]] = {}
        self._done: set[int] = set()
        # Stored rows all of whose records are acked, deleted at the next flush:
        # row -> (kind, size, records).
        self._acked: dict[int, tuple[str, int, int]] = {}
        self._cursor: dict[tuple[int, int], int] = {}
        self.live_from = self._last_seq  # what is already buffered at open is backlog
        self.backlog_marks: deque[int] = deque([self.live_from], maxlen=1000)  # lane history
        self._commits: deque[tuple[float, int]] = deque(maxlen=256)  # (when, last seq) per flush
        self._commits_base = self.live_from  # last seq before the oldest remembered commit
        self.evictions = EvictionLog()
        self._checkpointer = Checkpointer(self.path)
        self._packer = msgpack.Packer(use_bin_type=True)
        self._values = {cls: values_of(cls) for cls in RECORD_TYPES.values()}

    # -- writing -----------------------------------------------------------------------------
    def append(self, records: Iterable[Record]) -> None:
        """Buffer records for the next `flush` (nothing is durable before it)."""
        pack, pending, values = self._packer.pack, self._pending, self._values
        for rec in records:
            pending.append((rec.KIND, rec.rig, rec.session_id, rec.PRIORITY, rec.ts_ns,
                            pack(values[type(rec)](rec))))

    def flush(self) -> int:
        """Commit what `append` buffered, the deletes of acked rows, and any evictions the
        budget needs, in one transaction. Returns how many records were inserted.

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
        evicted: list[tuple[str, list[tuple[int, int, int]]]] = []
        accounted = False
        try:
            with self.conn:
                if cap is not None:  # low on disk: make room first, so inserts reuse the pages
                    self._evict_over_budget(evicted, cap - sum(_size(r[5]) for r in rows))
                last_seq = self._insert(rows)
                if acked:
                    self.conn.executemany("DELETE FROM outbox WHERE seq = ?",
                                          [(s,) for s in acked])
                self._account(rows, acked, sign=1)
                accounted = True
                self._evict_over_budget(evicted, cap)
        except sqlite3.Error as exc:
            if accounted:  # roll the counters back with the transaction
                self._account(rows, acked, sign=-1)
            for kind, victims in evicted:
                self._usage_add(kind, sum(n for _, _, n in victims),
                                sum(size for _, size, _ in victims))
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
            line = self.evictions.note(kind, sum(n for _, _, n in victims), self._now())
            if line:
                log.warning("%s", line)
        return len(rows)

    def _insert(self, rows: Sequence[chunks.Pending]) -> int:
        """Write `rows` (inside flush's transaction) several records to a stored row; returns
        the last seq used."""
        seq, shape_of = self._last_seq, self._shape_of
        stored = []
        for kind, rig, session_id, priority, ts_ns, bodies in chunks.group(rows):
            seq += len(bodies)
            stored.append((seq, len(bodies), kind, rig, session_id, priority, ts_ns,
                           shape_of[kind], b"".join(bodies)))
        for start in range(0, len(stored), INSERT_ROWS):
            part = stored[start:start + INSERT_ROWS]
            self.conn.execute(_insert_sql(len(part)), [v for row in part for v in row])
        return seq

    def _disk_cap(self) -> int | None:
        """Below `min_free_bytes` free: the size the outbox may not grow past (what it held
        when the disk ran low: the file reuses its own freed pages up to that size, and a cap
        that followed the size down would ratchet it to nothing, as eviction frees whole
        stored rows, a little more than it must), else None. A file system that cannot say
        is taken as roomy."""
        try:
            free = self._free_bytes()
        except OSError:
            return None
        low = free < self.min_free_bytes
        if low != self._disk_low:
            self._disk_low = low
            self._cap_bytes = self.used_bytes()
            if low:
                log.warning("outbox: %.0f MB left on the disk (keeping %.0f MB free): the outbox "
                            "stops growing, new records push out the oldest samples",
                            free / 2**20, self.min_free_bytes / 2**20)
            else:
                log.info("outbox: disk space is back (%.0f MB free)", free / 2**20)
        return self._cap_bytes if low else None

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

    def _account(self, rows: Sequence[chunks.Pending],
                 acked: dict[int, tuple[str, int, int]], sign: int) -> None:
        added: dict[str, list[int]] = {}  # kind -> rows, body bytes: summed first (hot path)
        for kind, _, _, _, _, body in rows:
            a = added.get(kind)
            if a is None:
                a = added[kind] = [0, 0]
            a[0] += 1
            a[1] += len(body)
        for kind, (n, size) in added.items():
            self._usage_add(kind, sign * n, sign * (size + n * ROW_OVERHEAD_BYTES))
        for kind, size, n in acked.values():
            self._usage_add(kind, -sign * n, -sign * size)

    def _usage_add(self, kind: str, rows: int, size: int) -> None:
        u = self._usage.setdefault(kind, [0, 0])
        u[0] += rows
        u[1] += size

    def _evict_over_budget(self, done: list[tuple[str, list[tuple[int, int, int]]]],
                           cap: int | None = None) -> None:
        """Inside flush's transaction: delete the oldest stored rows the policy names,
        re-measuring until within budget (and within `cap`, the disk's). Rows with a record in
        flight to the broker or acked are left alone. Appends (kind, [(seq, size, records)])."""
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
                busy = set(self._claimed.values()) | self._acked.keys() | self._part_acked.keys()
            freed = 0
            for kind, n in steps:
                victims: list[tuple[int, int, int]] = []
                records = 0
                for seq, rows, size in self.conn.execute(
                        "SELECT seq, n, length(body) FROM outbox WHERE priority = ? AND kind = ?"
                        " ORDER BY seq LIMIT ?", (_priority_of(kind), kind, n + len(busy))):
                    if records >= n:
                        break
                    if seq not in busy:
                        victims.append((seq, size + rows * ROW_OVERHEAD_BYTES, rows))
                        records += rows
                if not victims:
                    continue
                self.conn.executemany("DELETE FROM outbox WHERE seq = ?",
                                      [(s,) for s, _, _ in victims])
                self.conn.execute(
                    "INSERT INTO evictions (kind, rows, last_ns) VALUES (?, ?, ?) ON CONFLICT"
                    " (kind) DO UPDATE SET rows = rows + excluded.rows, last_ns = excluded.last_ns",
                    (kind, records, time.time_ns()))
                self._usage_add(kind, -records, -sum(size for _, size, _ in victims))
                done.append((kind, victims))
                freed += records
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
        for _ in range(1000):  # bounded: each round moves the cursor past what it read
            if lo >= hi or len(got) >= n:
                break
            limit = min(n - len(got), _CLAIM_PAGE)
            fetched = self.conn.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE priority = ? AND seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?", (prio, lo, hi, limit)).fetchall()
            full = False
            for stored in fetched:
                if not self._take(stored, got, n):
                    full = True  # this stored row is read again next time
                    break
                lo = stored[0]
            if full or len(fetched) < limit:
                break
        self._cursor[(lane, prio)] = lo
        return got

    def _take(self, stored: tuple[Any, ...], got: list[Row], n: int) -> bool:
        """Hand out the records of one stored row not yet handed out or acked, up to `n` in
        `got`; whether all of them were (else the row must be read again)."""
        seq, rows, kind, rig, session_id, priority, ts_ns, shape, body = stored
        if seq in self._acked:
            return True
        fields = None if shape == MAP_SHAPE else self._fields.get(shape, ())
        try:
            bodies = chunks.split(body, rows)
        except ValueError as exc:  # a foreign or damaged row: the uplink drops what it can't read
            log.error("outbox: stored row %d unreadable: %s", seq, exc)
            bodies = [b""] * rows
        claimed, done = self._claimed, self._done
        for i, record in enumerate(bodies):
            rec_seq = seq - rows + 1 + i
            if rec_seq in claimed or rec_seq in done:
                continue
            if len(got) >= n:
                return False
            got.append(Row(rec_seq, kind, rig, session_id, priority, ts_ns, record, seq, rows,
                           fields))
            claimed[rec_seq] = seq
        return True

    def ack(self, rows: Sequence[Row]) -> None:
        """The broker has them: a stored row is deleted with the next group commit once every
        record of it is acked."""
        for r in rows:
            chunk = self._claimed.pop(r.seq, None)
            if chunk is None:
                continue
            part = self._part_acked.get(chunk)
            if part is None:
                part = self._part_acked[chunk] = [r.chunk_rows, 0]
            part[0] -= 1
            part[1] += len(r.body)
            if part[0] > 0:
                self._done.add(r.seq)
                continue
            del self._part_acked[chunk]
            self._done.difference_update(range(chunk - r.chunk_rows + 1, chunk + 1))
            self._acked[chunk] = (r.kind, part[1] + r.chunk_rows * ROW_OVERHEAD_BYTES,
                                  r.chunk_rows)

    def release(self, rows: Sequence[Row]) -> None:
        """Not delivered: hand them out again, in their place."""
        for r in rows:
            self._claimed.pop(r.seq, None)
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
        return (sum(n for n, _ in self._usage.values()) - len(self._done)
                - sum(n for _, _, n in self._acked.values()))

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
