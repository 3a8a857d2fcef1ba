"""Shim → box frames: the protocol between `pitbox shim` (iRacing PC) and the relay on the box.

This is the one box-side module the shim imports, so it needs only the standard library and
msgpack. On the TCP stream every frame is

    u32 big-endian length N | 32-byte HMAC-SHA256 tag | N - 32 bytes msgpack body

and the tag covers the body under the pairing key the box hands out. The body is a map

    {"v": 1, "shim": str, "boot": int, "seq": int, "kind": "info" | "tel", "data": map}

`boot` is the shim's start time (ns) and `seq` counts frames since that start; the pair must
grow per shim id (`ReplayGuard`), so a recorded frame played back later is refused, and a
restarted shim (larger `boot`) is accepted from seq 0 again. The shim id is inside the tag:
without the key a sender cannot speak for another shim.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import msgpack

from gateway.errors import MalformedPacket

VERSION = 1
TAG_BYTES = 32
MAX_FRAME_BYTES = 256 * 1024  # a session-info frame of a 64-car field is ~20 KB
KINDS = frozenset({"info", "tel"})
MIN_KEY_CHARS = 16


class FrameRefused(MalformedPacket):
    """An authentic-looking frame the relay must not accept (bad tag, replayed, oversize)."""


@dataclass(frozen=True, slots=True)
class Frame:
    shim: str
    boot: int
    seq: int
    kind: str
    data: dict[str, Any]


def seal(key: bytes, shim: str, boot: int, seq: int, kind: str, data: dict[str, Any]) -> bytes:
    """One frame ready for the socket, length prefix included."""
    body: bytes = msgpack.packb({"v": VERSION, "shim": shim, "boot": boot, "seq": seq, "kind": kind,
                          "data": data}, use_bin_type=True)
    tag = hmac.new(key, body, hashlib.sha256).digest()
    return (TAG_BYTES + len(body)).to_bytes(4, "big") + tag + body


class FrameSplitter:
    """Cuts a TCP byte stream into frames (without their length prefix). Pure, bounded.

    An announced length above `MAX_FRAME_BYTES` raises `FrameRefused("oversize")`: the stream
    cannot be resynchronised after that, so the caller closes the connection.
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        out = []
        while len(self._buf) >= 4:
            size = int.from_bytes(self._buf[:4], "big")
            if size > self.max_frame or size < TAG_BYTES:
                raise FrameRefused("oversize" if size > self.max_frame else "undersize",
                                   f"frame of {size} bytes")
            if len(self._buf) < 4 + size:
                break
            out.append(bytes(self._buf[4:4 + size]))
            del self._buf[:4 + size]
        return out


def open_frame(key: bytes, frame: bytes) -> Frame:
    """Check the tag, then parse. Raises `FrameRefused("bad_hmac")` or `MalformedPacket`."""
    tag, body = frame[:TAG_BYTES], frame[TAG_BYTES:]
    if not hmac.compare_digest(tag, hmac.new(key, body, hashlib.sha256).digest()):
        raise FrameRefused("bad_hmac")
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise MalformedPacket("not_msgpack", str(exc)) from exc
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise MalformedPacket("bad_version")
    shim, boot, seq, kind, data = (msg.get(k) for k in ("shim", "boot", "seq", "kind", "data"))
    if not (isinstance(shim, str) and shim and isinstance(boot, int) and isinstance(seq, int)
            and kind in KINDS and isinstance(data, dict)):
        raise MalformedPacket("bad_body")
    return Frame(shim, boot, seq, str(kind), data)


class ReplayGuard:
    """Per shim id, (boot, seq) must grow. Pure; the relay keeps one for all connections."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def marks(self) -> dict[str, tuple[int, int]]:
        """The last accepted (boot, seq) of each shim id."""
        return dict(self._last)

    def restore(self, marks: dict[str, tuple[int, int]]) -> None:
        """Take marks kept from before a restart (the newer of each shim's two stays)."""
        for shim, mark in marks.items():
            self._last[shim] = max(mark, self._last.get(shim, mark))

    def accept(self, frame: Frame) -> None:
        """Raises `FrameRefused("replayed")` for a frame not newer than the last accepted."""
        mark = (frame.boot, frame.seq)
        last = self._last.get(frame.shim)
        if last is not None and mark <= last:
            raise FrameRefused("replayed", f"{frame.shim} {mark} <= {last}")
        self._last[frame.shim] = mark
