"""The store seam: a Firestore-shaped document store the bridge writes to.

Collections hold documents; both are named by strings (Firestore's rules: no `/`, not `.`
or `..`, at most 1,500 bytes). A document is a JSON-like dict. `write` is a batch and atomic,
like a Firestore `WriteBatch`. (Firestore takes at most 500 writes per batch: its backend
splits larger ones and is atomic per chunk; since every bridge write is idempotent, a partly
committed batch that is redelivered converges.) `merge=True` is
Firestore's `set(merge=True)` restricted to top-level keys: the given keys replace the
stored ones, other stored keys stay. `merge=False` replaces the whole document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from cloud.store.errors import DocumentError

MAX_BATCH_WRITES = 500  # Firestore's writes per commit; the emulator does not enforce it
MAX_ID_BYTES = 1500
MAX_DOC_BYTES = 1_048_487  # the payload Firestore takes in one document (1 MiB less overhead)
MAX_DEPTH = 20
_INT64 = (-(2**63), 2**63 - 1)


class DocWrite(NamedTuple):
    """One document write of a batch. `data` must be JSON-like (str/int/float/bool/None,
    lists, dicts with string keys).

    `if_newer`: apply only if the stored document has no integer `seq` or one <= `data["seq"]`
    (a write without a `seq` is always applied). Two bridge instances share the messages of one
    session, so a state the slower one holds may reach the store after a newer one; this
    guard costs a read, which is why only hot documents (<= 1 write/s) use it."""

    collection: str
    doc_id: str
    data: dict[str, Any]
    merge: bool = False
    if_newer: bool = False


class Store(Protocol):
    """Where the bridge files documents. Backends: `sqlite.SqliteStore` (embedded default)
    and `firestore.FirestoreStore`. Raise `errors.StoreError` when the store is unreachable
    or broken (retryable: the bridge holds its messages and tries again), `errors.DocumentError`
    when a document can never be written (the bridge dead-letters its message), and nothing
    else. Both refuse the same documents: Firestore's server by its rules, SQLite by
    `check_write`, which spells those rules out (tests/contract holds them to it)."""

    def write(self, docs: Sequence[DocWrite]) -> None:
        """Apply all writes; several writes to one document apply in order. A backend may
        split the sequence into commits (Firestore: <= `MAX_BATCH_WRITES` writes each, the
        `if_newer` ones apart), each atomic; when one fails, others may stay. Callers make
        every write idempotent, so writing the whole sequence again converges."""

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        """One document, or None if it does not exist."""

    def docs(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """Every document of a collection as (doc_id, data), ordered by doc_id."""

    def collections(self) -> list[str]:
        """The names of all collections holding at least one document, sorted."""

    def close(self) -> None:
        """Release the backend's connection."""


def is_stale(write: DocWrite, stored: dict[str, Any] | None) -> bool:
    """True if `write` is guarded (`if_newer`) and the stored document is newer."""
    if not write.if_newer or stored is None:
        return False
    new, old = write.data.get("seq"), stored.get("seq")
    return isinstance(new, int) and isinstance(old, int) and old > new


def check_id(name: str) -> str:
    """Firestore's id rules, so that what the embedded store accepts Firestore accepts too."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        size = 0
    if (not 0 < size <= MAX_ID_BYTES or "/" in name or name in (".", "..")
            or _reserved(name)):
        raise DocumentError(f"{name!r} is not a valid collection or document id")
    return name


def check_write(doc: DocWrite) -> None:
    """Refuse what Firestore refuses: bad ids, arrays in arrays, empty or reserved field
    names, ints beyond int64, other types, nesting deeper than 20. (Size is checked where
    the bytes are known: SQLite on its JSON, Firestore on the server.)

    Where it runs: in the bridge's filing (so a bad document is one message's dead letter,
    not a refused batch of 500 or a refused hot document other messages folded into), and in
    `SqliteStore`, which stands in for Firestore's server. `FirestoreStore` does not repeat
    it (its server refuses the same), so in production each document is checked once."""
    check_id(doc.collection)
    check_id(doc.doc_id)
    where = f"{doc.collection}/{doc.doc_id}"
    if not isinstance(doc.data, dict):
        raise DocumentError(f"{where}: data must be a dict, not {type(doc.data).__name__}")
    _check_map(doc.data, where, 1)


def _reserved(name: str) -> bool:
    return len(name) > 3 and name.startswith("__") and name.endswith("__")


_PLAIN = frozenset({str, bool, float, type(None)})  # always valid: NaN and inf included


def _check_map(value: dict[Any, Any], where: str, depth: int) -> None:
    # The hot path of every bridge write (each field of each record, when filed; in SQLite
    # again when stored): exact-type checks first, the path string only built when nested.
    if depth > MAX_DEPTH:
        raise DocumentError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    for key, item in value.items():
        if not isinstance(key, str) or not key or (key[:2] == "__" and _reserved(key)):
            raise DocumentError(f"{where}: {key!r} is not a valid field name")
        kind = type(item)
        if kind in _PLAIN or (kind is int and _INT64[0] <= item <= _INT64[1]):
            continue
        _check_value(item, f"{where}.{key}", depth, in_array=False)


def _check_value(value: Any, where: str, depth: int, *, in_array: bool) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise DocumentError(f"{where}: {value} is beyond a 64-bit integer")
    elif isinstance(value, float):
        return  # NaN and infinities are Firestore values too
    elif isinstance(value, dict):
        _check_map(value, where, depth + 1)
    elif isinstance(value, (list, tuple)):
        if in_array:
            raise DocumentError(f"{where}: an array inside an array")
        for item in value:
            _check_value(item, where, depth + 1, in_array=True)
    else:
        raise DocumentError(f"{where}: {type(value).__name__} is not a document value")


__all__ = ["MAX_BATCH_WRITES", "DocWrite", "Store", "check_id", "check_write", "is_stale"]
