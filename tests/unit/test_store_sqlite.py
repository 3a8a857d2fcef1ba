"""The embedded SQLite store: Firestore-shaped set, merge, and all-or-nothing batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store.base import DocWrite, Store
from cloud.store.errors import DocumentError, StoreError
from cloud.store.sqlite import UNREADABLE, SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db", now=lambda: 42)
    yield s
    s.close()


def test_written_documents_read_back(store: SqliteStore) -> None:
    store.write([DocWrite("s1", "1", {"lap": 1, "t": [1, 2], "x": None}),
                 DocWrite("s1", "2", {"lap": 2}), DocWrite("s2", "info", {"track": "spa"})])
    assert store.get("s1", "1") == {"lap": 1, "t": [1, 2], "x": None}
    assert store.get("s1", "3") is None
    assert store.docs("s1") == [("1", {"lap": 1, "t": [1, 2], "x": None}), ("2", {"lap": 2})]
    assert store.collections() == ["s1", "s2"]


def test_a_set_replaces_the_whole_document(store: SqliteStore) -> None:
    store.write([DocWrite("c", "d", {"a": 1, "b": 2})])
    store.write([DocWrite("c", "d", {"a": 3})])
    assert store.get("c", "d") == {"a": 3}


def test_a_merge_replaces_top_level_keys_and_keeps_the_rest(store: SqliteStore) -> None:
    store.write([DocWrite("c", "d", {"a": 1, "b": {"x": 1}, "n": 5}, merge=True)])
    store.write([DocWrite("c", "d", {"b": {"y": 2}, "n": None}, merge=True)])
    assert store.get("c", "d") == {"a": 1, "b": {"y": 2}, "n": None}


def test_merges_within_one_batch_apply_in_order(store: SqliteStore) -> None:
    store.write([DocWrite("c", "d", {"a": 1}, merge=True), DocWrite("c", "d", {"b": 2}, merge=True)])
    assert store.get("c", "d") == {"a": 1, "b": 2}


def test_a_failing_write_leaves_nothing(store: SqliteStore) -> None:
    store.write([DocWrite("c", "old", {"v": 1})])
    with pytest.raises(DocumentError):
        store.write([DocWrite("c", "new", {"v": 2}), DocWrite("c", "old", {"v": 9}, merge=True),
                     DocWrite("c", "bad", {"v": object()})])
    assert store.docs("c") == [("old", {"v": 1})]


@pytest.mark.parametrize("doc_id", ["a/b", ".", "..", "__x__", "", "é" * 751])
def test_ids_firestore_refuses_are_refused(store: SqliteStore, doc_id: str) -> None:
    with pytest.raises(DocumentError):
        store.write([DocWrite("c", "ok", {}), DocWrite("c", doc_id, {})])
    assert store.collections() == []


def test_documents_survive_reopening_and_the_file_is_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(path, now=lambda: 7)
    s.write([DocWrite("c", "d", {"a": 1})])
    s.close()
    s2: Store = SqliteStore(path)
    assert s2.get("c", "d") == {"a": 1}
    s2.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT updated_ns FROM docs").fetchall() == [(7,)]
    conn.close()


def test_a_store_that_cannot_be_opened_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        SqliteStore(tmp_path / "missing-dir" / "s.db")
    assert isinstance(info.value, OSError)


def test_a_locked_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(path)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    s.db.conn.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(StoreError):
        s.write([DocWrite("c", "d", {})])
    blocker.rollback()
    blocker.close()
    s.write([DocWrite("c", "d", {})])
    assert s.get("c", "d") == {}
    s.close()


@pytest.mark.parametrize("broken", ["{broken", "[1, 2]"])
def test_a_row_that_is_no_json_object_any_more_is_refused_set_aside_and_written_afresh(
        store: SqliteStore, broken: str) -> None:
    """Permanent, so a `DocumentError`: as a `StoreError` (an outage) the bridge retried the
    merge into it for ever, everything else waiting behind it. Left in place it would refuse
    every later merge, so the refused write sets it aside and the next one starts afresh."""
    store.write([DocWrite("c", "d", {"v": 1})])
    with store.db.conn:
        store.db.conn.execute("UPDATE docs SET data = ? WHERE doc_id = 'd'", (broken,))
    for read in (lambda: store.get("c", "d"), lambda: store.docs("c")):
        with pytest.raises(DocumentError, match="stored c/d is not"):
            read()
    with pytest.raises(DocumentError, match="stored c/d is not.*; set aside as unreadable/"):
        store.write([DocWrite("c", "x", {"x": 1}), DocWrite("c", "d", {"w": 2}, merge=True)])
    assert store.get("c", "x") is None  # the batch was rolled back: all or nothing
    store.write([DocWrite("c", "d", {"w": 3, "seq": 5}, merge=True, if_newer=True)])
    assert store.docs("c") == [("d", {"w": 3, "seq": 5})]
    [(aside_id, aside)] = store.docs(UNREADABLE)
    assert aside == {"collection": "c", "doc_id": "d", "text": broken}
    assert aside_id.endswith("-42")  # the store's clock: when it was found


def test_a_closed_store_raises_store_error(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.db")
    s.close()
    with pytest.raises(StoreError):
        s.write([DocWrite("c", "d", {})])
