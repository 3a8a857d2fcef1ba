"""The relay receiver: the box's TCP server for `pitbox shim` connections. A shell: it owns
the listening socket and nothing else; frames are checked by the pure `frames` module.

Several shims at once (a team is several PCs, a venue several teams), one asyncio task per
connection. A frame with a bad HMAC, an old (boot, seq) or a body that does not decode is
counted by reason in `refused` and dropped; the connection stays, unless the stream itself
is broken (an impossible length), or one peer sends `MAX_BAD_FRAMES` bad frames in a row.
Accepted frames go to `emit(shim, kind, data, wall_ns, mono_ns)`; an exception there is
logged and counted, never fatal. With `marks_path`, the replay marks outlive a restart of
the box (`relay_marks`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.capture import relay_marks
from gateway.decode.irsdk.frames import FrameSplitter, ReplayGuard, open_frame
from gateway.errors import MalformedPacket

log = logging.getLogger("pitbox.relay")

Emit = Callable[[str, str, dict[str, Any], int, int], None]
READ_BYTES = 64 * 1024
MAX_BAD_FRAMES = 50  # in a row: a peer without the key is not worth listening to
MAX_CLIENTS = 128
MARKS_EVERY_S = 1.0


class IrsdkRelay:
    """`await start()` binds (port 0 = any free port, see `.port`); `close()` stops all."""

    def __init__(self, emit: Emit, *, key: bytes, host: str = "0.0.0.0",
                 port: int = 20778, marks_path: Path | None = None) -> None:
        self.emit, self.key, self.host, self.port = emit, key, host, port
        self.marks_path = marks_path
        self.guard = ReplayGuard()
        self._saved_at_frame = 0
        self._marks_task: asyncio.Task[None] | None = None
        self.refused: Counter[str] = Counter()
        self.frames = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        if self.marks_path is not None:
            self.guard.restore(relay_marks.load(self.marks_path))
            self._marks_task = asyncio.create_task(self._keep_marks())
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("relay: listening for iRacing shims on tcp %s:%d", self.host, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        if len(self._clients) >= MAX_CLIENTS:
            self.refused["too_many_clients"] += 1
            writer.close()
            return
        self._clients.add(writer)
        self.connections += 1
        log.info("relay: shim connected from %s", peer)
        try:
            await self._read(reader, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a connection task's top level: log, count, carry on
            self.refused["internal_error"] += 1
            log.exception("relay: connection from %s failed", peer)
        finally:
            self._clients.discard(writer)
            writer.close()
            log.info("relay: shim at %s disconnected", peer)

    async def _read(self, reader: asyncio.StreamReader, peer: str) -> None:
        splitter = FrameSplitter()
        bad_run = 0
        while chunk := await reader.read(READ_BYTES):
            try:
                frames = splitter.feed(chunk)
            except MalformedPacket as exc:
                self.refused[exc.reason] += 1
                log.warning("relay: %s sent a broken stream (%s); closing", peer, exc)
                return
            for raw in frames:
                if self._accept(raw, peer):
                    bad_run = 0
                else:
                    bad_run += 1
            if bad_run >= MAX_BAD_FRAMES:
                log.warning("relay: %s sent %d bad frames in a row; closing", peer, bad_run)
                return

    def _accept(self, raw: bytes, peer: str) -> bool:
        try:
            frame = open_frame(self.key, raw)
            self.guard.accept(frame)
        except MalformedPacket as exc:
            self.refused[exc.reason] += 1
            log.debug("relay: refused a frame from %s: %s", peer, exc)
            return False
        self.frames += 1
        try:
            self.emit(frame.shim, frame.kind, frame.data, time.time_ns(), time.monotonic_ns())
        except MalformedPacket as exc:
            self.refused[exc.reason] += 1
        except Exception:  # the pipeline's problem, not the connection's
            self.refused["emit_failed"] += 1
            log.exception("relay: a frame from %s could not be processed", frame.shim)
        return True

    async def _keep_marks(self) -> None:
        while True:
            await asyncio.sleep(MARKS_EVERY_S)
            if self.frames != self._saved_at_frame:
                frames, marks = self.frames, self.guard.marks()
                try:
                    await asyncio.to_thread(self._save, marks)
                except OSError as exc:  # a full or read-only card: capture goes on
                    self.refused["marks_not_saved"] += 1
                    log.warning("relay: cannot save replay marks: %s", exc)
                else:
                    self._saved_at_frame = frames

    def _save(self, marks: dict[str, tuple[int, int]]) -> None:
        assert self.marks_path is not None
        relay_marks.save(self.marks_path, marks)

    def alive(self) -> bool:
        """The listening socket is still open (the gateway's watchdog stops when it is not)."""
        return self._server is not None and self._server.is_serving()

    def close(self) -> None:
        if self._marks_task is not None:
            self._marks_task.cancel()
            self._marks_task = None
            if self.frames != self._saved_at_frame:
                try:
                    self._save(self.guard.marks())
                except OSError as exc:
                    log.warning("relay: cannot save replay marks: %s", exc)
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
