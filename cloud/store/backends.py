"""Open the store a command asked for (`--store sqlite|firestore`): config picks the backend."""

from __future__ import annotations

from pathlib import Path

from cloud.store.base import Store
from cloud.store.errors import StoreError

KINDS = ("sqlite", "firestore")


def open_store(kind: str, *, db: Path, project: str, database: str = "(default)") -> Store:
    """`sqlite`: the file `db` (its folder must exist). `firestore`: `project`/`database`,
    credentials from the environment or the emulator named by `FIRESTORE_EMULATOR_HOST`."""
    if kind == "sqlite":
        from cloud.store.sqlite import SqliteStore
        return SqliteStore(db)
    if kind == "firestore":
        try:
            from cloud.store.firestore import FirestoreStore
        except ImportError as exc:
            raise StoreError("the Firestore store needs google-cloud-firestore: "
                             "pip install 'pitbox[cloud]'") from exc
        return FirestoreStore(project, database=database)
    raise StoreError(f"unknown store {kind!r}: choose one of {', '.join(KINDS)}")
