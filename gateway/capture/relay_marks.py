"""The relay's replay marks on disk: the highest (boot, seq) accepted from each shim, so that
frames recorded on the venue's LAN before a box restart are still refused after it.

Written atomically (a temp file, fsync, rename) at most once a second while frames arrive,
and at close; a crash loses at most that second's marks, whose frames could then be played
back once. A file that cannot be read is logged and set aside: the box must start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("pitbox.relay")

Marks = dict[str, tuple[int, int]]  # shim id -> (boot, seq)


def load(path: Path) -> Marks:
    """The marks saved at `path` ({} when there is no file or it cannot be read)."""
    try:
        raw = json.loads(path.read_text())
        marks = {str(shim): (int(boot), int(seq)) for shim, (boot, seq) in raw.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("relay: replay marks in %s unreadable (%s); starting without them", path,
                    exc)
        return {}
    return marks


def save(path: Path, marks: Mapping[str, tuple[int, int]]) -> None:
    # A temp file of its own: the periodic save (a thread) and the one at close may overlap.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({shim: list(mark) for shim, mark in marks.items()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
