"""The pitbox capture file (`.pbxcap`): raw datagrams with their receive time and source.

Append-only and safe against a pulled plug: every record carries its own CRC, so a torn or
corrupt tail is detected and ignored on read while every earlier record stays readable.

Layout: the magic `b"PBXCAP1\\n"`, then records of
    `<IqB` (payload length, wall receive time in ns, source length)
    + source (utf-8 "ip:port") + payload + `<I` crc32 of everything of the record before it.

This is a thin shell around one file; the caller passes the receive time in.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple, Self

from gateway.errors import PitboxError

log = logging.getLogger("pitbox.recorder")
MAGIC = b"PBXCAP1\n"
RECORD_HEAD = struct.Struct("<IqB")
CRC = struct.Struct("<I")
RAW_SRC = "file"

PathLike = str | os.PathLike[str]


class CaptureError(PitboxError, ValueError):
    """A file that is not a pitbox capture (no magic), or a record that cannot be written."""


class Captured(NamedTuple):
    """One received datagram: wall receive time (ns since the epoch; 0 if unknown), source
    address "ip:port", and the raw UDP payload."""

    ts_ns: int
    src: str
    payload: bytes


class CaptureWriter:
    """Appends records to `path`. Writes the magic only when the file is new or empty.
    `flush()` pushes buffered records to the OS (call it on a timer, not per datagram);
    `close()` flushes and closes. Use as a context manager."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        if self._file.tell() == 0:
            self._file.write(MAGIC)
        self.records = 0

    def write(self, payload: bytes, src: str, ts_ns: int) -> None:
        """Append one datagram received from `src` at wall time `ts_ns`."""
        src_bytes = src.encode("utf-8")
        if len(src_bytes) > 255:
            raise CaptureError(f"source address too long ({len(src_bytes)} bytes): {src[:40]}")
        record = RECORD_HEAD.pack(len(payload), ts_ns, len(src_bytes)) + src_bytes + payload
        self._file.write(record + CRC.pack(zlib.crc32(record)))
        self.records += 1

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class CaptureReader:
    """Iterates the records of a capture file. A torn or corrupt tail (short record, CRC
    mismatch) ends the iteration cleanly; after iterating, `skipped_bytes` says how many
    bytes at the end were ignored (0 for a clean file) and `records` how many were read.
    Raises CaptureError at once if the file does not start with the magic."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise CaptureError(f"{self.path}: not a pitbox capture (no {MAGIC!r} magic)")
        self.records = 0
        self.skipped_bytes = 0

    def __iter__(self) -> Iterator[Captured]:
        self.records = self.skipped_bytes = 0
        with open(self.path, "rb") as f:  # streamed: an hour of a rig is over a gigabyte
            f.seek(len(MAGIC))
            while True:
                start = f.tell()
                item = _read_record(f)
                if item is None:
                    self.skipped_bytes = f.seek(0, os.SEEK_END) - start
                    return
                self.records += 1
                yield item


def _read_record(f: BinaryIO) -> Captured | None:
    """The next record, or None at the end of the file or at a torn or corrupt record."""
    head = f.read(RECORD_HEAD.size)
    if len(head) < RECORD_HEAD.size:
        return None
    length, ts_ns, src_len = RECORD_HEAD.unpack(head)
    rest = f.read(src_len + length + CRC.size)
    if len(rest) < src_len + length + CRC.size:
        return None
    body = head + rest[:-CRC.size]
    if CRC.unpack(rest[-CRC.size:])[0] != zlib.crc32(body):
        return None
    try:
        src = rest[:src_len].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return Captured(ts_ns, src, rest[src_len:src_len + length])


def read_capture(path: PathLike) -> Iterator[Captured]:
    """Every intact record of a capture file, in order (see CaptureReader for the tail)."""
    return iter(CaptureReader(path))


def is_capture(path: PathLike) -> bool:
    """True for a pitbox capture; CaptureError (not a bare OSError) when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read: {exc.strerror}") from exc


def iter_datagrams(path: PathLike, *, reader: str = "capture",
                   quiet: bool = False) -> Iterator[Captured]:
    """A capture file's records, or a raw single-datagram file (`.bin`) as one Captured with
    ts_ns 0 and src "file". Once a capture is read to the end, a torn tail (a capture cut
    short) is said in one warning line that starts with `reader` ("replay", "f1 dump"): the
    user should know the file ends early, and where. `quiet` says nothing, for a pass that
    only counts ahead of the one that reads (the user hears of the tail once)."""
    if not is_capture(path):
        yield Captured(0, RAW_SRC, Path(path).read_bytes())
        return
    records = CaptureReader(path)
    yield from records
    if records.skipped_bytes and not quiet:
        log.warning("%s: %s: torn tail: %d bytes after record %d skipped (a capture cut short, "
                    "e.g. by a pulled plug)", reader, path, records.skipped_bytes, records.records)


class RotatingRecorder:
    """`pitbox record`'s file side: captures into `directory`, a new file at every start and
    whenever the current one passes `max_bytes`, named `{prefix}-{UTC start}-{n:03d}.pbxcap`.

    Never appends to an old file: a torn tail from a pulled plug would hide everything written
    after it. `sync()` (call it on a timer) flushes and fsyncs, so at most that interval is
    lost to a pulled plug, and the reader skips the torn record."""

    def __init__(self, directory: PathLike, *, prefix: str = "f1", max_bytes: int = 256 << 20,
                 started: str = "") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix, self.max_bytes = prefix, max_bytes
        self.started = started or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.files: list[Path] = []
        self.records = 0
        self.bytes = 0
        self._writer: CaptureWriter | None = None
        self._size = 0

    def write(self, payload: bytes, src: str, ts_ns: int) -> None:
        if self._writer is None or self._size >= self.max_bytes:
            self._rotate()
        assert self._writer is not None
        self._writer.write(payload, src, ts_ns)
        size = RECORD_HEAD.size + len(src.encode("utf-8")) + len(payload) + CRC.size
        self._size += size
        self.bytes += size
        self.records += 1

    def _rotate(self) -> None:
        if self._writer is not None:
            self.sync()
            self._writer.close()
        path = self.directory / f"{self.prefix}-{self.started}-{len(self.files) + 1:03d}.pbxcap"
        if path.exists():  # never append after somebody else's (possibly torn) tail
            raise CaptureError(f"{path} exists already")
        self._writer = CaptureWriter(path)
        self._size = len(MAGIC)
        self.files.append(path)

    def sync(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            os.fsync(self._writer.fileno())

    def close(self) -> None:
        if self._writer is not None:
            self.sync()
            self._writer.close()
            self._writer = None
