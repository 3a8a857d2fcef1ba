"""A resumable download over HTTP(S): the part already on disk is kept across dropped
connections and restarts, and the rest asked for with a `Range` header.

The partial file is named after the URL, so a pulled plug during a download just means the next
run (the timer's) continues where this one stopped. Nothing here is trusted: the bundle is
verified by its signature afterwards. Retries are bounded, with jittered backoff.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path

from firmware.update.manifest import UpdateError

log = logging.getLogger("pitbox.update")
MAX_BUNDLE_BYTES = 1 << 30
CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def part_path(url: str, dest_dir: Path) -> Path:
    return dest_dir / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".part")


def fetch(url: str, dest_dir: Path, *, attempts: int = 5, timeout_s: float = 30.0,
          backoff_s: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download `url` into `dest_dir`; returns the finished file. Raises `UpdateError` when
    `attempts` tries all failed (the part stays for next time)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = part_path(url, dest_dir)
    done = part.with_suffix(".bundle")
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            if _fetch_once(url, part, timeout_s):
                os.replace(part, done)
                return done
            last = "server ended early"
        except (OSError, HTTPException, urllib.error.URLError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        have = part.stat().st_size if part.exists() else 0
        log.warning("update: download attempt %d/%d of %s stopped at %d bytes (%s)",
                    attempt, attempts, url, have, last)
        if attempt < attempts:
            sleep(backoff_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
    raise UpdateError(f"download of {url} failed after {attempts} attempts: {last}")


def _fetch_once(url: str, part: Path, timeout_s: float) -> bool:
    """One request. True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our part is not a prefix of what is served now
            part.unlink()
            return False
        raise
    with resp:
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                raise UpdateError(f"server answered the range request for byte {have} wrongly")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
        else:  # 200: the server ignores ranges; start again
            have, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_BUNDLE_BYTES:
            raise UpdateError(f"bundle of {total} bytes is larger than {MAX_BUNDLE_BYTES}")
        with open(part, mode) as fh:
            while chunk := resp.read(CHUNK):
                fh.write(chunk)
                have += len(chunk)
                if have > MAX_BUNDLE_BYTES:
                    raise UpdateError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
            fh.flush()
            os.fsync(fh.fileno())
    return total is None or have == total
