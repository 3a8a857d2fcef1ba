"""The shim's connection to the box: reconnect with capped, jittered backoff; a short
bounded buffer while the box is unreachable; every frame sealed (HMAC) with a fresh seq.

Frames wait in a deque of `buffer_frames`. When it overflows, the two oldest telemetry frames
are folded into one (later values win), so the buffer stays bounded and the box's picture
stays right, only coarser. After every (re)connect the link first sends the latest session
info and the full picture it has sent so far: a box that restarted meanwhile is whole again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from typing import Any

from gateway.decode.irsdk.frames import seal

log = logging.getLogger("pitbox.shim")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
CONNECT_TIMEOUT_S = 5.0


class Link:
    def __init__(self, box: tuple[str, int], key: bytes, shim_id: str, *,
                 proxy: tuple[str, int] | None = None, buffer_frames: int = 600) -> None:
        self.box, self.key, self.shim_id, self.proxy = box, key, shim_id, proxy
        self.buffer_frames = buffer_frames
        self.boot = time.time_ns()
        self.seq = 0
        self.queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.sent = self.folded = self.connects = 0
        self.connected = asyncio.Event()
        self._info: dict[str, Any] | None = None
        self._picture: dict[str, Any] = {}  # every variable as last sent
        self._wake = asyncio.Event()

    def put(self, kind: str, data: dict[str, Any]) -> None:
        """Queue a frame (never blocks). `kind` "info" replaces the info to resend."""
        if kind == "info":
            self._info = data
        self.queue.append((kind, data))
        while len(self.queue) > self.buffer_frames and self._fold():
            self.folded += 1
        self._wake.set()

    def _fold(self) -> bool:
        tels = [i for i, (kind, _) in enumerate(self.queue) if kind == "tel"][:2]
        if len(tels) < 2:
            if len(self.queue) > self.buffer_frames:
                self.queue.popleft()  # nothing to fold: an old info frame goes
                return True
            return False
        first, second = self.queue[tels[0]][1], self.queue[tels[1]][1]
        if second.get("full"):  # a full picture makes what came before it moot
            merged = second
        else:
            merged = {**second, "vars": {**first["vars"], **second["vars"]},
                      "full": bool(first.get("full"))}
        self.queue[tels[1]] = ("tel", merged)
        del self.queue[tels[0]]
        return True

    async def run(self, stop: asyncio.Event) -> None:
        backoff = BACKOFF_FIRST_S
        while not stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT_S)
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.warning("shim: box %s:%d unreachable (%s); retry in %.1f s", *self.box,
                            exc, backoff)
                await _sleep_or_stop(stop, backoff * random.uniform(0.8, 1.2))
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            backoff = BACKOFF_FIRST_S
            self.connects += 1
            log.info("shim: connected to the box at %s:%d", *self.box)
            try:
                await self._pump(reader, writer, stop)
            except (OSError, ConnectionError) as exc:
                log.warning("shim: lost the box (%s)", exc)
            finally:
                self.connected.clear()
                writer.close()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.proxy is None:
            return await asyncio.open_connection(*self.box)
        reader, writer = await asyncio.open_connection(*self.proxy)
        target = f"{self.box[0]}:{self.box[1]}"
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        reply = await reader.readuntil(b"\r\n\r\n")
        status = reply.split(b"\r\n", 1)[0]
        if b" 200" not in status:
            writer.close()
            raise ConnectionError(f"proxy refused: {status!r}")
        return reader, writer

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    stop: asyncio.Event) -> None:
        if self._picture and self._info is not None:  # the box may have restarted meanwhile
            self.queue.appendleft(("tel", {"vars": dict(self._picture), "full": True}))
            self.queue.appendleft(("info", self._info))
        self.connected.set()
        closed = asyncio.ensure_future(reader.read(1))  # the box never talks: data = EOF/error
        try:
            while not stop.is_set() and not closed.done():
                if not self.queue:
                    self._wake.clear()
                    waiter = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waiter, closed}, timeout=0.5,
                                       return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                kind, data = self.queue[0]
                self.seq += 1
                writer.write(seal(self.key, self.shim_id, self.boot, self.seq, kind, data))
                await writer.drain()
                self.queue.popleft()
                self.sent += 1
                if kind == "tel":
                    if data.get("full"):
                        self._picture = {}
                    self._picture.update(data["vars"])
        finally:
            closed.cancel()
        if closed.done() and not stop.is_set():
            raise ConnectionError("the box closed the connection")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
