"""The Firestore store's own encoder sends exactly the protobuf `WriteBatch.set` would.

Pure: the client is only asked to stage writes (no server; `FIRESTORE_EMULATOR_HOST` points
at a closed port so it needs no credentials). Each case is encoded both ways and compared
write by write, masks and nested values included."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import write as write_types

from cloud.store.base import DocWrite
from cloud.store.errors import DocumentError
from cloud.store.firestore_encode import commit_request

CASES: list[DocWrite] = [
    DocWrite("sess", "1", {"lap_no": 1, "lap_time_ms": 90_001, "valid": True, "pit": False,
                           "fuel_kg": 1.5, "tyre": "soft", "note": None}),
    DocWrite("sess", "state", {"seq": 9, "stint": 2, "pit_exit_s": None}, merge=True),
    DocWrite("sess~samples", "box-1-42", {"sectors": [30_000, 30_001, None],
                                          "tyres": {"fl": 80.5, "fr": [1, "x"], "empty": {}},
                                          "none": [], "deep": {"a": {"b": {"c": [True]}}}}),
    DocWrite("devices", "box-1", {"state": {"outbox_rows": 3, "leds": "green"}, "state_ns": 1},
             merge=True),
    DocWrite("odd", "keys", {"a.b": 1, "with space": 2, "1st": 3, "ünï": 4, "`tick`": 5,
                             "big": 2**63 - 1, "small": -(2**63), "inf": math.inf,
                             "tuple": (1, 2)}, merge=True),
    DocWrite("odd", "empty-set", {}),
    DocWrite("odd", "empty-merge", {}, merge=True),
    DocWrite("col@team#1#2", "doc~with#chars", {"x": "y"}),
]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    return firestore.Client(project="demo-encode")


def _by_client(client: Any, doc: DocWrite) -> Any:
    batch = client.batch()
    ref = client.collection(doc.collection).document(doc.doc_id)
    if doc.merge and doc.data:  # what FirestoreStore staged through the client before
        batch.set(ref, doc.data, merge=[FieldPath(k) for k in doc.data])
    else:
        batch.set(ref, doc.data, merge=doc.merge)
    [pb] = batch._write_pbs
    return write_types.Write.pb(pb)


@pytest.mark.parametrize("doc", CASES, ids=[f"{d.collection}/{d.doc_id}" for d in CASES])
def test_each_write_is_the_protobuf_the_client_would_send(client: Any, doc: DocWrite) -> None:
    request = commit_request(client._database_string, [doc])
    assert request.database == client._database_string
    [mine] = request.writes
    assert mine == _by_client(client, doc)


def test_a_batch_keeps_the_order_of_its_writes(client: Any) -> None:
    request = commit_request(client._database_string, CASES)
    assert [w.update.name.rsplit("/", 1)[1] for w in request.writes] == [d.doc_id for d in CASES]


def test_nan_is_a_double_like_the_clients(client: Any) -> None:
    [mine] = commit_request(client._database_string, [DocWrite("c", "d", {"x": math.nan})]).writes
    assert math.isnan(mine.update.fields["x"].double_value)


@pytest.mark.parametrize("value", [b"bytes", object(), {1: "int key"}, 2**64])
def test_a_value_firestore_cannot_hold_is_a_document_error(client: Any, value: Any) -> None:
    with pytest.raises(DocumentError, match="c/d"):
        commit_request(client._database_string, [DocWrite("c", "d", {"x": value})])
