"""One contract, two stores: the embedded SQLite store and Firestore (Google's emulator).

Every test runs against both backends (Firestore twice: its fast commit, and the public
`WriteBatch` it falls back to); what one store accepts, refuses or returns, the other does
too, so the bridge behaves the same on either.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store.base import MAX_BATCH_WRITES, DocWrite, Store
from cloud.store.errors import DocumentError
from tests.contract.firestore_fixtures import PROJECT


@pytest.fixture(params=["sqlite", "firestore", "firestore-writebatch"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    if request.param == "sqlite":
        from cloud.store.sqlite import SqliteStore
        s: Store = SqliteStore(tmp_path / "store.db")
    else:
        request.getfixturevalue("firestore_host")  # the emulator, emptied for this test
        from cloud.store import firestore
        if request.param == "firestore-writebatch":  # a client without the fast path's members
            monkeypatch.setattr(firestore, "FAST_PATH", (*firestore.FAST_PATH, "_renamed"))
        s = firestore.FirestoreStore(PROJECT)
        assert s.fast == (request.param == "firestore")
    yield s
    s.close()


VALUES = {"int": 2**63 - 1, "neg": -5, "float": 1.5, "whole_float": 2.0, "true": True,
          "none": None, "text": "Spa-Francorchamps é ü 日本", "list": [1, "a", None, 2.5],
          "map": {"x": 1, "deep": {"y": [1, 2]}}, "list_of_maps": [{"a": [1]}], "empty": {}}


def test_every_value_type_reads_back_as_written(store: Store) -> None:
    store.write([DocWrite("s1", "1", VALUES), DocWrite("s1", "nan", {"v": math.nan})])
    got = store.get("s1", "1")
    assert got == VALUES
    assert got is not None and type(got["whole_float"]) is float and type(got["int"]) is int
    nan = store.get("s1", "nan")
    assert nan is not None and math.isnan(nan["v"])


def test_a_missing_document_is_none(store: Store) -> None:
    assert store.get("nowhere", "x") is None
    assert store.docs("nowhere") == []


def test_documents_list_in_id_order_and_collections_sorted(store: Store) -> None:
    ids = ["2", "10", "B", "a", "é", "state", "info", "box-1-7"]
    store.write([DocWrite("laps", i, {"i": i}) for i in ids]
                + [DocWrite("b~samples", "x", {}), DocWrite("A@s#1#2", "info", {})])
    assert [d for d, _ in store.docs("laps")] == sorted(ids)
    assert dict(store.docs("laps"))["é"] == {"i": "é"}
    assert store.collections() == ["A@s#1#2", "b~samples", "laps"]


def test_a_set_replaces_the_whole_document(store: Store) -> None:
    store.write([DocWrite("c", "d", {"a": 1, "b": {"x": 1}})])
    store.write([DocWrite("c", "d", {"a": 3})])
    assert store.get("c", "d") == {"a": 3}


def test_a_merge_replaces_top_level_fields_whole_and_keeps_the_others(store: Store) -> None:
    store.write([DocWrite("c", "d", {"a": 1, "b": {"x": 1}, "n": 5}, merge=True)])
    store.write([DocWrite("c", "d", {"b": {"y": 2}, "n": None}, merge=True)])
    assert store.get("c", "d") == {"a": 1, "b": {"y": 2}, "n": None}


def test_a_merge_creates_a_missing_document_even_an_empty_one(store: Store) -> None:
    store.write([DocWrite("c", "new", {"a": 1}, merge=True), DocWrite("c", "e", {}, merge=True)])
    assert store.get("c", "new") == {"a": 1}
    assert store.get("c", "e") == {}


def test_writes_to_one_document_in_one_batch_apply_in_order(store: Store) -> None:
    store.write([DocWrite("c", "d", {"a": 1}, merge=True), DocWrite("c", "d", {"b": 2}, merge=True),
                 DocWrite("c", "s", {"v": 1}), DocWrite("c", "s", {"v": 2})])
    assert store.get("c", "d") == {"a": 1, "b": 2}
    assert store.get("c", "s") == {"v": 2}


def test_writing_the_same_batch_twice_changes_nothing(store: Store) -> None:
    batch = [DocWrite("c", str(i), {"seq": i}) for i in range(5)]
    batch.append(DocWrite("c", "state", {"seq": 4, "stint": 2}, merge=True))
    store.write(batch)
    first = store.docs("c")
    store.write(batch)
    assert store.docs("c") == first and len(first) == 6


def test_a_batch_longer_than_one_commit_lands_whole(store: Store) -> None:
    n = 2 * MAX_BATCH_WRITES + 201
    store.write([DocWrite("big", f"{i:05d}", {"i": i}) for i in range(n)])
    got = store.docs("big")
    assert len(got) == n and got[-1] == (f"{n - 1:05d}", {"i": n - 1})


BAD_DOCS = {
    "slash in id": DocWrite("c", "a/b", {}),
    "dot id": DocWrite("c", ".", {}),
    "dotdot collection": DocWrite("..", "d", {}),
    "reserved id": DocWrite("c", "__x__", {}),
    "empty id": DocWrite("c", "", {}),
    "id over 1500 bytes": DocWrite("c", "é" * 751, {}),
    "array in array": DocWrite("c", "d", {"a": [[1]]}),
    "empty field name": DocWrite("c", "d", {"": 1}),
    "reserved field name": DocWrite("c", "d", {"m": {"__k__": 1}}),
    "int beyond int64": DocWrite("c", "d", {"a": 2**64}),
    "not a value": DocWrite("c", "d", {"a": object()}),
    "over 1 MiB": DocWrite("c", "d", {"a": "x" * 1_100_000}),
}


@pytest.mark.parametrize("bad", BAD_DOCS.values(), ids=BAD_DOCS.keys())
def test_a_document_firestore_refuses_is_refused_and_nothing_is_written(
        store: Store, bad: DocWrite) -> None:
    store.write([DocWrite("c", "old", {"v": 1})])
    with pytest.raises(DocumentError):
        store.write([DocWrite("c", "new", {"v": 2}), DocWrite("c", "old", {"v": 9}), bad])
    assert store.docs("c") == [("old", {"v": 1})]


def test_a_guarded_write_never_replaces_a_newer_seq(store: Store) -> None:
    def state(seq: int, stint: int) -> DocWrite:
        return DocWrite("s", "state", {"seq": seq, "stint": stint}, merge=True, if_newer=True)

    store.write([state(5, 2)])  # a missing document: applied
    store.write([state(3, 1), DocWrite("s", "1", {"seq": 3})])  # older: skipped, the lap lands
    assert store.get("s", "state") == {"seq": 5, "stint": 2} and store.get("s", "1") is not None
    store.write([state(5, 2)])  # the same one again: harmless
    store.write([state(8, 3)])
    assert store.get("s", "state") == {"seq": 8, "stint": 3}
    store.write([DocWrite("s", "state", {"seq": 1, "x": 1}, merge=True)])  # unguarded: applied
    assert store.get("s", "state") == {"seq": 1, "stint": 3, "x": 1}
