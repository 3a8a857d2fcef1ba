"""The store seam: a Firestore-shaped document store the bridge writes to.

Collections hold documents; both are named by strings (Firestore's rules: no `/`, not `.`
or `..`, at most 1,500 bytes). A document is a JSON-like dict. `write` is a batch and atomic,
like a Firestore `WriteBatch`. (Firestore takes at most 500 writes per batch: its backend will
split larger ones and be atomic per chunk; since every bridge write is idempotent, a partly
committed batch that is redelivered converges.) `merge=True` is
Firestore's `set(merge=True)` restricted to top-level keys: the given keys replace the
stored ones, other stored keys stay. `merge=False` replaces the whole document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class DocWrite(NamedTuple):
    """One document write of a batch. `data` must be JSON-like (str/int/float/bool/None,
    lists, dicts with string keys)."""

    collection: str
    doc_id: str
    data: dict[str, Any]
    merge: bool = False


class Store(Protocol):
    """Where the bridge files documents. Backends: `sqlite.SqliteStore` (embedded default);
    Firestore later. Raise `errors.StoreError` when the store is unreachable (retryable) and
    `errors.DocumentError` when a document can never be written."""

    def write(self, docs: Sequence[DocWrite]) -> None:
        """Apply all writes in order, atomically: all of them or none."""

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        """One document, or None if it does not exist."""

    def docs(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """Every document of a collection as (doc_id, data), ordered by doc_id."""

    def collections(self) -> list[str]:
        """The names of all collections holding at least one document, sorted."""

    def close(self) -> None:
        """Release the backend's connection."""
