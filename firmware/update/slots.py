"""Two slots (A/B virtualenvs) under one root, and the one symlink that says which runs.

```
ROOT/slots/a/  ROOT/slots/b/     each a virtualenv; `.pitbox-slot.json` is written last
ROOT/current -> slots/a          what systemd runs: ROOT/current/bin/pitbox
ROOT/good -> slots/a             the last slot that passed its health check: what recovers
ROOT/state.json                  {"floor": "1.4.0", "trial": {...}}: anti-rollback + recovery
ROOT/update.lock                 one updater at a time (flock)
```
A slot is *complete* only once its marker exists; the marker is removed before a slot is
rewritten. The switch is one `rename()` of a fresh symlink over `current`, so after a pulled
plug `current` is the old slot or the new one, never neither, and both are complete. `good`
moves only after a version passed (and `state.json` no longer names a trial), so the boot-time
recovery runs code that is known to work even when `current` is an untested slot. The
floor — the highest version that ever passed its health check — only rises, and does not
depend on the wall clock.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.update.manifest import UpdateError

SLOT_NAMES = ("a", "b")
MARKER = ".pitbox-slot.json"


@dataclass(frozen=True, slots=True)
class SlotInfo:
    name: str
    version: str
    bundle_sha256: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a pulled plug leaves the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _slot_of(link: Path) -> str | None:
    try:
        target = os.readlink(link)
    except (FileNotFoundError, NotADirectoryError):
        return None
    name = Path(target).name
    return name if name in SLOT_NAMES else None


class Slots:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.current_link = root / "current"
        self.good_link = root / "good"
        self.state_path = root / "state.json"

    def dir(self, name: str) -> Path:
        return self.root / "slots" / name

    def current(self) -> str | None:
        """The slot `current` points at, or None on a box never installed this way."""
        return _slot_of(self.current_link)

    def good(self) -> str | None:
        """The slot `good` points at: the last one that passed its health check."""
        return _slot_of(self.good_link)

    def other(self, name: str | None) -> str:
        return "b" if name == "a" else "a"

    def info(self, name: str) -> SlotInfo | None:
        """The slot's marker: None unless the slot is complete."""
        try:
            doc = json.loads((self.dir(name) / MARKER).read_text())
            return SlotInfo(name, str(doc["version"]), str(doc["bundle_sha256"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear(self, name: str) -> Path:
        """Make slot `name` empty, marker first (so a half-removed slot is never complete)."""
        if name == self.current():
            raise UpdateError(f"refusing to clear slot {name}: it is the running one")
        if name == self.good():
            raise UpdateError(f"refusing to clear slot {name}: it is the known-good one")
        path = self.dir(name)
        marker = path / MARKER
        if marker.exists():
            marker.unlink()
            _fsync_dir(path)
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def mark_complete(self, name: str, version: str, bundle_sha256: str) -> None:
        doc = {"version": version, "bundle_sha256": bundle_sha256}
        write_atomic(self.dir(name) / MARKER, json.dumps(doc).encode() + b"\n")

    def switch(self, name: str) -> None:
        """Point `current` at slot `name` with one rename."""
        self._point(self.current_link, name)

    def mark_good(self, name: str) -> None:
        """Point `good` at slot `name` (one rename): only a slot that passed its health check."""
        if self.good() != name:
            self._point(self.good_link, name)

    def _point(self, link: Path, name: str) -> None:
        if self.info(name) is None:
            raise UpdateError(f"refusing to point {link.name} at slot {name}: it is not complete")
        tmp = link.with_name(link.name + ".new")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(Path("slots") / name, tmp)
        os.replace(tmp, link)
        _fsync_dir(self.root)

    def state(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.state_path.read_text())
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_state(self, doc: dict[str, Any]) -> None:
        write_atomic(self.state_path, json.dumps(doc, sort_keys=True).encode() + b"\n")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ROOT/update.lock; a second updater fails at once instead of waiting."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "update.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpdateError("another update is running (update.lock is held)") from None
            yield
