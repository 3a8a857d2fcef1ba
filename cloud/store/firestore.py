"""The production store: Google Cloud Firestore through `google-cloud-firestore` (sync client).

A `write` becomes commits of at most 500 writes (Firestore's limit, which the emulator does
not enforce, hence the chunking here and its test by counting commits). A merge is
`set(data, merge=[each top-level key])`: those fields are replaced whole and the others kept,
which is the store contract (`set(merge=True)` would merge nested maps key by key instead).
No plain write reads first, so the bridge's writes cost one RPC per 500 documents; the
`if_newer` writes (hot documents) go in chunks of their own that read just those documents
first and write them conditionally. `stats["reads"]` counts every document read, so a test
can hold the bridge to "no read before every write".

Plain writes are encoded by `firestore_encode` (the client's own staging cost more than the
commit, see there) and sent as one `Commit` RPC each, through the same private members of the
client that `WriteBatch.commit` uses (`FAST_PATH`). Those are checked once, when the store is
made: a client release without them makes the store commit through the public `WriteBatch`
instead (one warning; slower, same documents). When no document appears in two chunks
of one `write`, the chunks are independent and up to `commit_workers` are committed at once
(the emulator, like Firestore, serves commits in parallel: 62 commits took 3.5 s one after
another and 1.7 s two at a time here); otherwise they go one after another, in order.

The client retries on its own for a long time; we give each commit one attempt with a timeout
and leave retrying to the bridge, whose backoff holds the MQTT acknowledgements meanwhile.
Errors: what the server refuses as a request (`InvalidArgument`: a bad id, an array in an
array, over 1 MiB...) or the client cannot encode is a `DocumentError`; everything the network,
the server or the credentials raise is a `StoreError`. No client-side `check_write` here: the
server refuses the same documents (tests/contract), and the bridge checks them when it files.
Credentials come from the environment (Application Default Credentials); with
`FIRESTORE_EMULATOR_HOST` set, the client talks to the emulator without any.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.auth import exceptions as gauth
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import firestore as firestore_types

from cloud.store.base import MAX_BATCH_WRITES, DocWrite, is_stale
from cloud.store.errors import DocumentError, StoreError
from cloud.store.firestore_encode import commit_request

log = logging.getLogger("pitbox.store")

COMMIT_TIMEOUT_S = 30.0
COMMIT_WORKERS = 4  # commits in flight per write; enough to keep the server busy
GUARD_ATTEMPTS = 8
# The client's private members the fast commit uses (WriteBatch.commit uses them too).
FAST_PATH = ("_firestore_api", "_rpc_metadata", "_database_string")
# Errors no retry can fix: the document or request itself is wrong.
_REFUSED = (gexc.InvalidArgument, gexc.OutOfRange, gexc.FailedPrecondition)
# Everything else that means "not now": the server, the network, the credentials.
_UNAVAILABLE = (gexc.GoogleAPIError, gauth.GoogleAuthError, grpc.RpcError, OSError)


class FirestoreStore:
    """A `Store` on one Firestore database. `stats` counts `commits` and `writes`, so a test
    can see the 500-write chunking the emulator would not refuse, and `reads` (documents
    read by `get`, `docs` and the `if_newer` guard). `fast` says whether plain writes take
    the fast commit (see the module's docstring)."""

    def __init__(self, project: str, *, database: str = "(default)",
                 timeout_s: float = COMMIT_TIMEOUT_S,
                 commit_workers: int = COMMIT_WORKERS) -> None:
        try:
            self._client = firestore.Client(project=project, database=database)
        except Exception as exc:  # missing credentials and the like: say so in one line
            raise StoreError(f"cannot open Firestore project {project!r}: {exc}") from exc
        self.project, self.database = project, database
        self.timeout_s = timeout_s
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()  # stats only; the client itself is thread-safe
        self._pool = ThreadPoolExecutor(max(1, commit_workers),
                                        thread_name_prefix="pitbox-firestore")
        missing = fast_path_missing(self._client)
        self.fast = not missing
        if missing:
            log.warning("firestore: this google-cloud-firestore (%s) has no %s; committing "
                        "through the public WriteBatch instead (slower, same documents)",
                        getattr(firestore, "__version__", "?"), ", ".join(missing))

    def write(self, docs: Sequence[DocWrite]) -> None:
        chunks, independent = _plan(docs)
        if len(chunks) < 2 or not independent:
            for chunk in chunks:
                self._commit(chunk)
            return
        futures = [self._pool.submit(self._commit, chunk) for chunk in chunks]
        errors = [exc for f in futures if (exc := f.exception()) is not None]
        if errors:  # every commit has ended; a refused document outranks a lost server
            raise next((e for e in errors if isinstance(e, DocumentError)), errors[0])

    def _commit(self, chunk: Sequence[DocWrite]) -> None:
        try:
            if any(doc.if_newer for doc in chunk):
                self._commit_guarded(chunk)
            elif self.fast:  # the very call WriteBatch.commit makes (the client's own
                # routing header, emulator credentials and channel), minus its slow staging
                request = firestore_types.CommitRequest.wrap(
                    commit_request(self._client._database_string, chunk))
                self._client._firestore_api.commit(
                    request=request, metadata=self._client._rpc_metadata, retry=None,
                    timeout=self.timeout_s)
            else:
                batch = self._client.batch()
                self._stage(batch, chunk)
                batch.commit(retry=None, timeout=self.timeout_s)
        except _REFUSED as exc:
            raise DocumentError(f"Firestore refused a batch of {len(chunk)}: {exc}") from exc
        except _UNAVAILABLE as exc:
            raise StoreError(f"Firestore commit of {len(chunk)} writes failed: {exc}") from exc
        with self._lock:
            self.stats["commits"] += 1
            self.stats["writes"] += len(chunk)

    def _commit_guarded(self, chunk: Sequence[DocWrite]) -> None:
        """Optimistic, without a transaction: read the guarded documents (one `get_all`),
        leave out the stale writes, and make each guarded write conditional on the document
        being unchanged since that read (`last_update_time`, or `create` when it did not
        exist). If another bridge wrote one in between, the batch fails as a whole and is
        read and tried again. Transactions would hold locks two instances fight over (the
        emulator's lock timeouts made both stall); preconditions hold none."""
        for attempt in range(GUARD_ATTEMPTS):
            refs = {self._ref(d).path: self._ref(d) for d in chunk if d.if_newer}
            snaps = {snap.reference.path: snap for snap in self._client.get_all(
                list(refs.values()), retry=None, timeout=self.timeout_s)}
            self._count("reads", len(refs))
            batch = self._client.batch()
            stale = 0
            for doc in chunk:
                if not doc.if_newer:
                    self._stage(batch, [doc])
                    continue
                snap = snaps.get(self._ref(doc).path)
                stored = snap.to_dict() if snap is not None and snap.exists else None
                if is_stale(doc, stored):
                    stale += 1
                elif snap is None or stored is None:
                    self._stage(batch, [doc], create=True)
                else:
                    self._stage_update(batch, doc, stored, snap.update_time)
            try:
                batch.commit(retry=None, timeout=self.timeout_s)
            except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict):
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                continue
            with self._lock:
                self.stats["stale_skipped"] += stale
            return
        raise StoreError(f"another writer kept changing the guarded documents of a batch of "
                         f"{len(chunk)} ({GUARD_ATTEMPTS} attempts)")

    def _stage_update(self, batch: Any, doc: DocWrite, stored: dict[str, Any],
                      update_time: Any) -> None:
        """A merge (or, deleting the other fields, a set) as an `update` that only applies
        if the document is still the one read at `update_time`."""
        fields: dict[str, Any] = {FieldPath(k).to_api_repr(): v for k, v in doc.data.items()}
        if not doc.merge:
            fields.update({FieldPath(k).to_api_repr(): firestore.DELETE_FIELD
                           for k in stored if k not in doc.data})
        if not fields:
            return  # an empty merge into an existing document changes nothing
        try:
            batch.update(self._ref(doc), fields,
                         option=self._client.write_option(last_update_time=update_time))
        except (TypeError, ValueError) as exc:
            raise DocumentError(f"Firestore cannot hold {doc.collection}/{doc.doc_id}: "
                                f"{exc}") from exc

    def _ref(self, doc: DocWrite) -> Any:
        try:
            return self._client.collection(doc.collection).document(doc.doc_id)
        except ValueError as exc:  # the client's own path checks ("a/b" as an id...)
            raise DocumentError(f"{doc.collection}/{doc.doc_id}: {exc}") from exc

    def _stage(self, batch: Any, docs: Sequence[DocWrite], *, create: bool = False) -> None:
        """Add the writes to a batch (`create`: each only if the document does not exist); a
        value the client cannot encode is a `DocumentError`."""
        try:
            for doc in docs:
                if create:
                    batch.create(self._ref(doc), doc.data)
                elif doc.merge and doc.data:
                    batch.set(self._ref(doc), doc.data, merge=[FieldPath(k) for k in doc.data])
                else:
                    batch.set(self._ref(doc), doc.data, merge=doc.merge)
        except (TypeError, ValueError) as exc:
            raise DocumentError(f"Firestore cannot hold a document of this batch: {exc}") from exc

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        ref = self._ref(DocWrite(collection, doc_id, {}))
        try:
            snap = ref.get(retry=None, timeout=self.timeout_s)
        except _UNAVAILABLE as exc:
            raise StoreError(f"get {collection}/{doc_id} failed: {exc}") from exc
        self._count("reads", 1)
        return snap.to_dict() if snap.exists else None

    def docs(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        query = self._client.collection(collection).order_by(FieldPath.document_id())
        try:
            found = [(snap.id, snap.to_dict() or {})
                     for snap in query.stream(retry=None, timeout=self.timeout_s)]
        except _UNAVAILABLE as exc:
            raise StoreError(f"listing {collection} failed: {exc}") from exc
        self._count("reads", len(found))
        return found

    def collections(self) -> list[str]:
        try:
            return sorted(c.id for c in self._client.collections(retry=None,
                                                                  timeout=self.timeout_s))
        except _UNAVAILABLE as exc:
            raise StoreError(f"listing collections failed: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()  # type: ignore[no-untyped-call]

    def _count(self, key: str, n: int) -> None:
        with self._lock:
            self.stats[key] += n


def fast_path_missing(client: Any) -> list[str]:
    """Which of `FAST_PATH` (and `_firestore_api.commit`) `client` lacks; [] when the fast
    commit can be used. Reading `_firestore_api` makes the client's channel, as its first
    commit would; nothing is sent."""
    missing = [name for name in FAST_PATH if getattr(client, name, None) is None]
    if not missing and not callable(getattr(client._firestore_api, "commit", None)):
        missing.append("_firestore_api.commit")
    return missing


def _plan(docs: Sequence[DocWrite]) -> tuple[list[Sequence[DocWrite]], bool]:
    """Chunks of <= 500 writes and whether they are independent (no document in two).

    Plain writes first, then the guarded (`if_newer`) ones in chunks of their own, so a few hot
    documents never drag 499 plain writes through the read-and-check path; when a document has
    writes of both kinds, the order of the writes is kept instead."""
    guarded = [d for d in docs if d.if_newer]
    plain = [d for d in docs if not d.if_newer]
    keys = [(d.collection, d.doc_id) for d in docs]
    if guarded and {(d.collection, d.doc_id) for d in guarded} & {
            (d.collection, d.doc_id) for d in plain}:
        return _chunks(docs), False
    return _chunks(plain) + _chunks(guarded), len(set(keys)) == len(keys)


def _chunks(docs: Sequence[DocWrite]) -> list[Sequence[DocWrite]]:
    return [docs[i:i + MAX_BATCH_WRITES] for i in range(0, len(docs), MAX_BATCH_WRITES)]
