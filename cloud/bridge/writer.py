"""The store side of the bridge's writer loop: filed messages in, store writes, the messages
to acknowledge out. Only the writer loop of `run.Bridge` calls it (one thread: no locks).

A batch is filed and its merges held once (`prepare`), then committed (`commit`), again on
the same `Batch` for as long as the commit raises:

- as ONE `store.write` of its set documents and the hot documents due (<= 500 per commit);
- one by one when the store refuses a document of it (`DocumentError`), and on every retry
  after anything but a `StoreError` raised on it (a bug, ours or the store client's:
  `Batch.one_by_one`): each message's set documents alone, then each due hot document
  alone. A message the store refuses gets a `bad_document` dead letter; one a bug raises on
  gets a `bridge_error` dead letter (the exception as the reason), and so does each message
  waiting on a hot document a bug raises on. A hot document the store refuses is counted
  (`hot_refused`) and dropped.

A poisoned message and a broken store look alike until the dead letter is written: if that
write raises too, so does the commit, and nothing of the batch is acknowledged or counted.
Counts (`messages`, `records`, `merges`, `dead_*`) are taken once per message: when its batch
is prepared, and for the dead letters of a commit when that commit is done.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cloud.bridge.delivery import Delivery
from cloud.bridge.filing import Filed, file_message, refuse
from cloud.bridge.hot import Flush, HotDocs
from cloud.bridge.layout import coalesce
from cloud.store.base import DocWrite, Store
from cloud.store.errors import DocumentError, StoreError

log = logging.getLogger("pitbox.bridge")


@dataclass(slots=True)
class Batch:
    """Filed messages on their way to one commit, kept across retries of the commit. Each
    message is counted once: by the `Writer.prepare` that made the batch (one that raised
    is run again on the same messages, and counted nothing)."""

    filed: list[tuple[Delivery, Filed]]
    ready: list[Delivery]  # acknowledged after the commit: none of their documents is held
    one_by_one: bool = False  # a bug raised on a commit of it: retried message by message


class Writer:
    """Files, holds and commits batches into `store`; counts into `stats` (see `Bridge`)."""

    def __init__(self, store: Store, hot: HotDocs, stats: Counter[str], *, prefix: str,
                 now: Callable[[], int], mono: Callable[[], int]) -> None:
        self.store, self.hot, self.stats, self.prefix = store, hot, stats, prefix
        self._now, self._mono = now, mono

    def prepare(self, msgs: list[Delivery]) -> Batch | None:
        """`msgs` filed, their merges held; None if there are none and no hot document is
        due. Counts only once it is done: if it raises, the loop runs it again on the same
        messages (filing is pure, and holding one twice is harmless)."""
        due = self.hot.next_due_ns()
        if not msgs and (due is None or due > self._mono()):
            return None
        filed = [(msg, self._file(msg)) for msg in msgs]
        ready = [msg for msg, f in filed if not self.hot.hold(msg, _merges(f))]
        for msg, f in filed:
            self.stats["messages"] += 1
            self.stats["records"] += f.records
            self.stats["merges"] += len(_merges(f))
            if f.code is not None:
                self._count_dead(msg, f)
        self.stats["hot_stale"] = self.hot.stale_dropped
        return Batch(filed, ready)

    def commit(self, batch: Batch, *, force: bool = False) -> list[Delivery]:
        """Write the batch and the hot documents due (all held ones with `force`); the
        messages to acknowledge: every one none of whose documents is still held. Raises a
        `StoreError` (an outage), or whatever a bug raised on a write, if the batch is not
        written: nothing is counted or released then."""
        flush = self.hot.due(self._mono(), force=force)
        if batch.one_by_one:
            dead = self._write_each(batch.filed, flush)
        else:
            dead = self._write_all(batch.filed, flush)
        for msg, f in dead:
            self._count_dead(msg, f)
        released = self.hot.committed(flush, self._mono())
        self.stats["hot_writes"] += len(flush.docs)
        return batch.ready + [m for m in released if isinstance(m, Delivery)]

    def _file(self, msg: Delivery) -> Filed:
        """`file_message`, and if a bug raises on this message, a `bridge_error` dead letter
        with the bug's words: a broad except at the top of one message's task, so a message
        that always trips filing is kept, and acknowledged, instead of held for ever."""
        try:
            return file_message(self.prefix, msg.topic, msg.payload, mid=msg.mid,
                                received_ns=self._now())
        except Exception as exc:
            log.exception("bridge: filing message %d on %s failed", msg.mid, msg.topic)
            return refuse(msg.topic, msg.payload, "bridge_error", bug_reason(exc), mid=msg.mid,
                          received_ns=self._now())

    def _count_dead(self, msg: Delivery, f: Filed) -> None:
        self.stats["dead_letters"] += 1
        self.stats[f"dead_{f.code}"] += 1
        log.warning("bridge: dead letter (%s) from %s (%d bytes): %s", f.code, msg.topic,
                    len(msg.payload), f.reason)

    def _write_all(self, filed: list[tuple[Delivery, Filed]],
                   flush: Flush) -> list[tuple[Delivery, Filed]]:
        """One write for the set documents and the due hot ones, or, if the store refuses a
        document (`DocumentError`), `_write_each`. (Filing refuses what `check_write` would,
        so that takes what only the server knows, e.g. Firestore's 1 MiB.)"""
        try:
            self._write(coalesce([d for _, f in filed for d in _sets(f)]) + flush.docs)
            return []
        except DocumentError as exc:
            log.warning("bridge: the store refused a document (%s); writing one by one", exc)
        return self._write_each(filed, flush)

    def _write_each(self, filed: list[tuple[Delivery, Filed]],
                    flush: Flush) -> list[tuple[Delivery, Filed]]:
        """Each message's set documents alone, then each hot document alone; the dead letters
        written for what failed (see the module's docstring)."""
        dead: dict[Delivery, Filed] = {}  # Delivery hashes by identity
        for msg, f in filed:
            failed = self._try(coalesce(_sets(f)), f"message {msg.mid} on {msg.topic}")
            if failed is not None:
                dead[msg] = self._dead_letter(msg, *failed)
        for key, doc in zip(flush.keys, flush.docs, strict=True):
            where = f"{doc.collection}/{doc.doc_id}"
            failed = self._try([doc], where)
            if failed is None:
                continue
            if failed[0] == "bad_document":
                self.stats["hot_refused"] += 1
                continue
            for token in self.hot.waiting(key):  # a merge of theirs may be what trips the bug
                if isinstance(token, Delivery) and token not in dead:
                    dead[token] = self._dead_letter(token, failed[0], f"{failed[1]} ({where})")
        return list(dead.items())

    def _try(self, docs: Sequence[DocWrite], what: str) -> tuple[str, str] | None:
        """Write `docs`: None if done, else the code and reason of a dead letter for them. A
        store outage (`StoreError`) is raised: the whole commit is retried."""
        try:
            self._write(docs)
            return None
        except DocumentError as exc:
            log.warning("bridge: the store refused %s: %s", what, exc)
            return "bad_document", f"store refused: {exc}"
        except StoreError:
            raise
        except Exception as exc:  # a bug on this write alone: see _dead_letter
            log.exception("bridge: writing %s failed", what)
            return "bridge_error", bug_reason(exc)

    def _dead_letter(self, msg: Delivery, code: str, reason: str) -> Filed:
        """Write `msg`'s dead letter. If the store takes not even that, this raises and so
        does the commit: a store broken for every write is not one poisoned message."""
        f = refuse(msg.topic, msg.payload, code, reason, mid=msg.mid, received_ns=self._now())
        self._write(f.docs)
        return f

    def _write(self, docs: Sequence[DocWrite]) -> None:
        if docs:
            self.store.write(docs)
            self.stats["writes"] += 1
            self.stats["docs"] += len(docs)


def bug_reason(exc: BaseException) -> str:
    """A dead letter's reason when a bug raised on the message."""
    return f"bridge error: {type(exc).__name__}: {exc}"


def _merges(f: Filed) -> list[DocWrite]:
    return [d for d in f.docs if d.merge]


def _sets(f: Filed) -> list[DocWrite]:
    return [d for d in f.docs if not d.merge]
