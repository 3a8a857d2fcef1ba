"""The Firestore store's fast commit leans on three private members of the client (the ones
`WriteBatch.commit` itself uses). Server-less: if a google-cloud-firestore upgrade renames
them, this fails here first; the store would fall back to the public `WriteBatch` (that path
is tested against the emulator in tests/contract)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from google.cloud import firestore

from cloud.store.firestore import FAST_PATH, fast_path_missing


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # no credentials; never dialled
    c = firestore.Client(project="demo-fastpath")
    yield c
    c.close()  # type: ignore[no-untyped-call]


def test_the_installed_client_has_the_private_members_the_fast_commit_uses(client: Any) -> None:
    assert fast_path_missing(client) == []
    assert client._database_string == "projects/demo-fastpath/databases/(default)"
    assert callable(client._firestore_api.commit)
    assert isinstance(client._rpc_metadata, list)


def test_a_client_without_them_is_told_apart() -> None:
    assert fast_path_missing(SimpleNamespace()) == list(FAST_PATH)
    no_commit = SimpleNamespace(_firestore_api=object(), _rpc_metadata=[], _database_string="d")
    assert fast_path_missing(no_commit) == ["_firestore_api.commit"]
