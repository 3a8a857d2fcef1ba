"""Pure core: hot documents written at most once per interval, messages acked after their write.

Firestore sustains about one write per second per document. The documents every message of
a session touches again are the merged ones: the session's `state` and `info`, the field cars'
`NN-state`, and `devices/{id}`. The bridge hands every merge write here (`hold`) together with
the message (`token`) it came from; `due(now)` says which held documents may be written now
(never written, or last written >= `interval_ns` ago), folded into one write each; after the
commit, `committed` returns the messages none of whose documents is still held: only those are
acknowledged, so a crash while a document waits loses nothing (the broker redelivers).

Across batches a stale merge (a redelivered older `seq` than one already written to the same
document) is dropped: every merged record writes its whole set of fields, so the newer write
already says everything. The seqs remembered for that are bounded (`seq_memory`) and only
this instance's; across instances the store's `if_newer` guard does the same.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from cloud.store.base import DocWrite

NS_PER_S = 1_000_000_000
# Per instance. The broker spreads one device's messages over every instance of the shared
# subscription, and each coalesces on its own: with two, 2 s each keeps <= 1 write/s overall.
HOT_INTERVAL_S = 2.0
_Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Flush:
    """The held documents that are due, one write each, and their keys."""

    docs: list[DocWrite]
    keys: list[_Key]


class HotDocs:
    """Holds merge writes per document; releases each document at most once per interval."""

    def __init__(self, interval_ns: int = int(HOT_INTERVAL_S * NS_PER_S), *,
                 seq_memory: int = 100_000) -> None:
        self.interval_ns = interval_ns
        self.seq_memory = seq_memory
        self.stale_dropped = 0
        self._held: dict[_Key, DocWrite] = {}
        self._waiting: dict[_Key, list[Hashable]] = {}
        self._outstanding: dict[Hashable, int] = {}
        self._written_ns: dict[_Key, int] = {}
        self._written_seq: OrderedDict[_Key, int] = OrderedDict()

    def __len__(self) -> int:
        """Documents held now."""
        return len(self._held)

    @property
    def waiting_messages(self) -> int:
        return len(self._outstanding)

    def hold(self, token: Hashable, writes: Iterable[DocWrite]) -> bool:
        """Hold `token`'s merge writes. True if it now waits on a held document (else it may
        be acknowledged with the batch: all its writes were stale)."""
        for w in writes:
            key = (w.collection, w.doc_id)
            seq = _seq(w)
            if seq >= 0 and seq < self._written_seq.get(key, -1):
                self.stale_dropped += 1
                continue
            held = self._held.get(key)
            self._held[key] = w if held is None else _fold(held, w)
            waiting = self._waiting.setdefault(key, [])
            if token not in waiting:
                waiting.append(token)
                self._outstanding[token] = self._outstanding.get(token, 0) + 1
        return token in self._outstanding

    def waiting(self, key: _Key) -> list[Hashable]:
        """The tokens waiting on the held document `key` (collection, doc id)."""
        return list(self._waiting.get(key, ()))

    def drop(self, token: Hashable) -> None:
        """Stop waiting on `token`'s documents: its message was not committed and will not be
        acknowledged (the broker redelivers it), so writing them must not release it. What it
        folded into a held document is still written."""
        if self._outstanding.pop(token, None) is None:
            return
        for waiting in self._waiting.values():
            if token in waiting:
                waiting.remove(token)

    def next_due_ns(self) -> int | None:
        """When the earliest held document may be written (clock of `due`), or None."""
        if not self._held:
            return None
        return min(self._written_ns.get(k, -self.interval_ns) + self.interval_ns
                   for k in self._held)

    def due(self, now_ns: int, *, force: bool = False) -> Flush:
        """The held documents that may be written at `now_ns` (all of them with `force`,
        e.g. at shutdown). Changes nothing until `committed`."""
        keys = [k for k in self._held
                if force or now_ns - self._written_ns.get(k, now_ns - self.interval_ns)
                >= self.interval_ns]
        return Flush([self._held[k] for k in keys], keys)

    def committed(self, flush: Flush, now_ns: int) -> list[Hashable]:
        """Mark `flush` written at `now_ns`; the messages that no longer wait on anything."""
        released = []
        for key, doc in zip(flush.keys, flush.docs, strict=True):
            if self._held.get(key) is not doc:
                continue  # (not expected: nothing is held between due() and committed())
            del self._held[key]
            self._written_ns[key] = now_ns
            seq = _seq(doc)
            if seq >= 0:
                self._written_seq[key] = max(seq, self._written_seq.get(key, -1))
                self._written_seq.move_to_end(key)
            for token in self._waiting.pop(key, []):
                self._outstanding[token] -= 1
                if self._outstanding[token] == 0:
                    del self._outstanding[token]
                    released.append(token)
        self._forget(now_ns)
        return released

    def _forget(self, now_ns: int) -> None:
        """Drop write times older than the interval, and the oldest remembered seqs."""
        old = [k for k, t in self._written_ns.items()
               if now_ns - t >= self.interval_ns and k not in self._held]
        for k in old:
            del self._written_ns[k]
        while len(self._written_seq) > self.seq_memory:
            self._written_seq.popitem(last=False)


def _seq(w: DocWrite) -> int:
    seq = w.data.get("seq", -1)
    return seq if isinstance(seq, int) else -1


def _fold(held: DocWrite, new: DocWrite) -> DocWrite:
    """Two merges of one document as one; the higher `seq` wins field by field."""
    first, second = (new, held) if 0 <= _seq(new) < _seq(held) else (held, new)
    if not second.merge:
        return second
    return first._replace(data={**first.data, **second.data}, merge=first.merge)
