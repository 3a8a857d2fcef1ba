"""What only the Firestore backend has: commit chunking, and errors of an unreachable server."""

from __future__ import annotations

import pytest

from cloud.store.base import MAX_BATCH_WRITES, DocWrite
from cloud.store.emulator import free_port
from cloud.store.errors import StoreError
from cloud.store.firestore import FirestoreStore
from tests.contract.firestore_fixtures import PROJECT


def test_a_long_write_is_committed_in_batches_of_at_most_500(firestore_host: str) -> None:
    store = FirestoreStore(PROJECT)
    try:
        store.write([DocWrite("c", str(i), {"i": i}) for i in range(1201)])
        assert (store.stats["commits"], store.stats["writes"]) == (3, 1201)
        store.write([DocWrite("c", str(i), {"i": i}) for i in range(MAX_BATCH_WRITES)])
        assert store.stats["commits"] == 4
        assert len(store.docs("c")) == 1201
    finally:
        store.close()


def test_an_unreachable_server_is_a_store_error_the_bridge_can_retry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    store = FirestoreStore(PROJECT, timeout_s=5)
    try:
        with pytest.raises(StoreError) as info:
            store.write([DocWrite("c", "d", {"a": 1})])
        assert isinstance(info.value, OSError) and "commit of 1 writes failed" in str(info.value)
        assert store.stats["commits"] == 0
    finally:
        store.close()


def test_two_writers_racing_on_a_guarded_document_end_at_the_highest_seq(
        firestore_host: str) -> None:
    """Two bridge instances holding states of one session: no locks to fight over, no
    regression, every write call returns."""
    import threading

    stores = [FirestoreStore(PROJECT), FirestoreStore(PROJECT)]
    errors: list[StoreError] = []

    def writer(store: FirestoreStore, seqs: range) -> None:
        try:
            for seq in seqs:
                store.write([DocWrite("s", "state", {"seq": seq, "stint": seq}, merge=True,
                                      if_newer=True),
                             DocWrite("s", f"lap-{seq}", {"seq": seq})])
        except StoreError as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(stores[0], range(0, 60, 2))),
               threading.Thread(target=writer, args=(stores[1], range(1, 60, 2)))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and not any(t.is_alive() for t in threads)
        assert stores[0].get("s", "state") == {"seq": 59, "stint": 59}
        assert len(stores[0].docs("s")) == 61
    finally:
        for s in stores:
            s.close()


def test_writes_to_one_document_in_a_long_write_apply_in_order(firestore_host: str) -> None:
    """Chunks are committed side by side only when no document is in two of them."""
    store = FirestoreStore(PROJECT)
    try:
        for _ in range(3):  # a race would have to lose only once to show
            store.write([DocWrite("c", "hot", {"v": 0})]
                        + [DocWrite("c", str(i), {"i": i}) for i in range(1100)]
                        + [DocWrite("c", "hot", {"v": 1})])
            assert store.get("c", "hot") == {"v": 1}
        assert len(store.docs("c")) == 1101
    finally:
        store.close()


def test_guarded_writes_read_only_their_own_documents(firestore_host: str) -> None:
    """The hot documents' `if_newer` check reads those documents, never the plain ones that
    share the write, and plain writes read nothing."""
    store = FirestoreStore(PROJECT)
    try:
        store.write([DocWrite("s", f"lap-{i}", {"seq": i}) for i in range(300)])
        assert store.stats["reads"] == 0
        store.write([DocWrite("s", f"lap-{i}", {"seq": i}) for i in range(300, 600)]
                    + [DocWrite("s", "state", {"seq": 9}, merge=True, if_newer=True)])
        assert store.stats["reads"] == 1 and store.stats["commits"] == 3
        store.write([DocWrite("s", "state", {"seq": 5}, merge=True, if_newer=True)])
        assert store.get("s", "state") == {"seq": 9}  # the older one was left out
    finally:
        store.close()


def test_a_client_without_the_fast_paths_members_commits_through_write_batch(
        firestore_host: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A google-cloud-firestore release that renamed `_firestore_api`, `_rpc_metadata` or
    `_database_string` (stood in for by one more name to look for): one warning when the
    store is made, then the same documents, in the same <= 500-write commits."""
    from cloud.store import firestore

    monkeypatch.setattr(firestore, "FAST_PATH", (*firestore.FAST_PATH, "_renamed"))
    with caplog.at_level("WARNING", logger="pitbox.store"):
        store = FirestoreStore(PROJECT)
    try:
        [warning] = caplog.records
        assert "has no _renamed" in warning.getMessage() and "WriteBatch" in warning.getMessage()
        assert not store.fast
        store.write([DocWrite("c", str(i), {"i": i, "l": [1, None]}) for i in range(1201)]
                    + [DocWrite("c", "0", {"j": 1}, merge=True)])
        assert (store.stats["commits"], store.stats["writes"]) == (3, 1202)
        assert len(store.docs("c")) == 1201 and store.get("c", "0") == {"i": 0, "j": 1,
                                                                        "l": [1, None]}
        assert len(caplog.records) == 1  # once, not per commit
    finally:
        store.close()
