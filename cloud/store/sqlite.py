"""The embedded store: documents as JSON rows of one SQLite table (sqlite-utils), in WAL mode.

    docs(collection TEXT, doc_id TEXT, data TEXT (JSON), updated_ns INTEGER,
         PRIMARY KEY (collection, doc_id))

One connection, guarded by a lock, so the bridge's writer thread and a reader (a test, the
CLI) may share the object. Each `write` is one `BEGIN IMMEDIATE … COMMIT` transaction.
Merges are done in Python inside that transaction (read, `{**old, **new}`, write): SQLite's
`json_patch` follows RFC 7396, where a `null` value deletes the key, and our records use
`None` for "not available" (e.g. `pit_exit_s`), which must be kept.

Every write is held to Firestore's rules (`check_write`): SQLite stands in for Firestore's
server, so the embedded store refuses what production refuses. Errors: SQLite's own (disk,
lock, a closed store) are a `StoreError`; a document it cannot hold is a `DocumentError`, and
so is a stored row that is not a JSON object any more (the file was changed behind our back:
retrying cannot help). A write whose merge (or `if_newer` guard) meets such a row is rolled
back and refused, and the row is set aside as `unreadable/{hash}-{ns}` (its text kept for a
person to look at), so that the document can be written again: a later merge starts it afresh.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from cloud.store.base import MAX_DOC_BYTES, DocWrite, check_write, is_stale
from cloud.store.errors import DocumentError, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_ns INTEGER NOT NULL,
    PRIMARY KEY (collection, doc_id)
)
"""
UNREADABLE = "unreadable"  # where a row that is no JSON object any more is set aside
_UPSERT = """
INSERT INTO docs (collection, doc_id, data, updated_ns) VALUES (?, ?, ?, ?)
ON CONFLICT (collection, doc_id) DO UPDATE SET data = excluded.data, updated_ns = excluded.updated_ns
"""


class SqliteStore:
    """A `Store` on a SQLite file (or an open sqlite-utils `Database` the caller owns the
    threading of). `now` gives `updated_ns` (wall-clock ns); pass a fake one in tests."""

    def __init__(self, path_or_db: str | Path | Database, *,
                 now: Callable[[], int] = time.time_ns) -> None:
        self._now = now
        self._lock = threading.Lock()
        try:
            if isinstance(path_or_db, Database):
                self._db = path_or_db
            else:
                conn = sqlite3.connect(str(path_or_db), timeout=10.0, check_same_thread=False)
                self._db = Database(conn)
            # readers don't block the writer (":memory:" answers "memory" and stays so)
            self._db.conn.execute("PRAGMA journal_mode = wal")
            with self._db.conn:
                self._db.conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {path_or_db!r}: {exc}") from exc

    @property
    def db(self) -> Database:
        return self._db

    def write(self, docs: Sequence[DocWrite]) -> None:
        if not docs:
            return
        conn = self._db.conn
        now_ns = self._now()
        with self._lock:
            try:
                with conn:  # commits, or rolls back on any exception (DocumentError too)
                    conn.execute("BEGIN IMMEDIATE")
                    for doc in docs:
                        check_write(doc)
                        data = doc.data
                        if doc.merge or doc.if_newer:
                            old = self._get(doc.collection, doc.doc_id)
                            if is_stale(doc, old):
                                continue
                            if doc.merge and old is not None:
                                data = {**old, **data}
                        conn.execute(_UPSERT, (doc.collection, doc.doc_id, _dumps(doc, data),
                                               now_ns))
            except _UnreadableError as exc:  # rolled back; left in place, it would refuse
                raise self._set_aside(exc, now_ns) from exc  # every merge for ever
            except sqlite3.Error as exc:
                raise StoreError(f"write of {len(docs)} docs failed: {exc}") from exc

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            try:
                return self._get(collection, doc_id)
            except sqlite3.Error as exc:
                raise StoreError(f"get {collection}/{doc_id} failed: {exc}") from exc

    def docs(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            try:
                rows = self._db.conn.execute(
                    "SELECT doc_id, data FROM docs WHERE collection = ? ORDER BY doc_id",
                    (collection,)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"listing {collection} failed: {exc}") from exc
        return [(doc_id, _loads(collection, doc_id, data)) for doc_id, data in rows]

    def collections(self) -> list[str]:
        with self._lock:
            try:
                rows = self._db.conn.execute(
                    "SELECT DISTINCT collection FROM docs ORDER BY collection").fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"listing collections failed: {exc}") from exc
        return [name for (name,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _set_aside(self, bad: _UnreadableError, now_ns: int) -> DocumentError:
        """Move the unreadable row to `UNREADABLE` (unless it changed meanwhile); the error
        for the write that met it."""
        key = f"{bad.collection}\0{bad.doc_id}".encode("utf-8", "replace")
        aside = f"{hashlib.sha256(key).hexdigest()[:16]}-{now_ns}"
        text = bad.raw if isinstance(bad.raw, str) else repr(bad.raw)
        conn = self._db.conn
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                gone = conn.execute("DELETE FROM docs WHERE collection = ? AND doc_id = ? AND "
                                    "data IS ?", (bad.collection, bad.doc_id, bad.raw)).rowcount
                if gone:
                    conn.execute(_UPSERT, (UNREADABLE, aside, json.dumps(
                        {"collection": bad.collection, "doc_id": bad.doc_id, "text": text}),
                        now_ns))
        except sqlite3.Error as exc:
            raise StoreError(f"{bad}, and setting it aside failed: {exc}") from exc
        if not gone:  # rewritten meanwhile: the next write reads it again
            return DocumentError(str(bad))
        return DocumentError(f"{bad}; set aside as {UNREADABLE}/{aside}, so the next write "
                             "starts it afresh")

    def _get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        row = self._db.conn.execute("SELECT data FROM docs WHERE collection = ? AND doc_id = ?",
                                    (collection, doc_id)).fetchone()
        if row is None:
            return None
        return _loads(collection, doc_id, row[0])


class _UnreadableError(DocumentError):
    """A stored row that is not a JSON object (the file was changed behind our back)."""

    def __init__(self, collection: str, doc_id: str, raw: Any, why: str) -> None:
        super().__init__(f"stored {collection}/{doc_id} {why}")
        self.collection, self.doc_id, self.raw = collection, doc_id, raw


def _loads(collection: str, doc_id: str, raw: Any) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError) as exc:  # bytes that are no UTF-8 included
        raise _UnreadableError(collection, doc_id, raw, f"is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _UnreadableError(collection, doc_id, raw,
                               f"is not a JSON object but a {type(data).__name__}")
    return data


def _dumps(doc: DocWrite, data: dict[str, Any]) -> str:
    try:
        text = json.dumps(data, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise DocumentError(f"{doc.collection}/{doc.doc_id} is not JSON: {exc}") from exc
    # json.dumps escapes non-ASCII, so this is bytes, a little above Firestore's own count
    if len(text) > MAX_DOC_BYTES:
        raise DocumentError(f"{doc.collection}/{doc.doc_id} is {len(text)} bytes of JSON; a "
                            f"document holds at most {MAX_DOC_BYTES}")
    return text
