"""The F1 UDP listener: a socket and nothing else. Bytes in, handed to `emit` unparsed, with
the receive time (wall and monotonic ns) and the source address that tells rigs apart."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

log = logging.getLogger("pitbox.capture")

Emit = Callable[[bytes, str, int, int], None]  # payload, "ip:port", wall ns, monotonic ns
RCVBUF_BYTES = 4 * 1024 * 1024  # 20 rigs at 60 Hz is ~7,100 datagrams/s: absorb scheduler hiccups


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.datagrams = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.datagrams += 1
        self.emit(data, f"{addr[0]}:{addr[1]}", time.time_ns(), time.monotonic_ns())

    def error_received(self, exc: Exception) -> None:
        log.warning("capture: socket error %s", exc)


class F1Capture:
    """`await start()` binds the socket (port 0 = any free port, see `.port`)."""

    def __init__(self, emit: Emit, *, host: str = "0.0.0.0", port: int = 20777) -> None:
        self.emit, self.host, self.port = emit, host, port
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        self._transport, self._protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(self.emit), sock=sock)
        log.info("capture: listening for F1 telemetry on udp %s:%d", self.host, self.port)

    @property
    def datagrams(self) -> int:
        return self._protocol.datagrams if self._protocol else 0

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
