"""The F1 UDP listener: sockets and nothing else. Bytes in, handed to `emit` unparsed, with the
receive time (wall and monotonic ns), the source address that tells rigs apart and the port
it arrived on (a venue may give each rig its own port). Copies go to the forwarder first, so
other telemetry apps see what the game sent even if the pipeline is busy."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

from gateway.forward import Forwarder

log = logging.getLogger("pitbox.capture")

# payload, "ip:port", wall ns, monotonic ns, listening port
Emit = Callable[[bytes, str, int, int, int], None]
RCVBUF_BYTES = 4 * 1024 * 1024  # ~0.5 s of 20 rigs at 60 Hz (~7,100 datagrams/s): absorbs hiccups


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, emit: Emit, port: int, forward: Forwarder | None) -> None:
        self.emit, self.port, self.forward = emit, port, forward
        self.datagrams = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.datagrams += 1
        if self.forward is not None:
            self.forward.send(data)
        self.emit(data, f"{addr[0]}:{addr[1]}", time.time_ns(), time.monotonic_ns(), self.port)

    def error_received(self, exc: Exception) -> None:
        log.warning("capture: socket error %s", exc)


class F1Capture:
    """`await start()` binds one socket per port (port 0 = any free port; `.ports` says which)."""

    def __init__(self, emit: Emit, *, host: str = "0.0.0.0", port: int = 20777,
                 extra_ports: tuple[int, ...] = (), forward: Forwarder | None = None) -> None:
        self.emit, self.host, self.forward = emit, host, forward
        self.ports = [port, *extra_ports]
        self._endpoints: list[tuple[asyncio.DatagramTransport, _Protocol]] = []

    @property
    def port(self) -> int:
        """The first (main) listening port."""
        return self.ports[0]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for i, wanted in enumerate(self.ports):
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            try:
                sock.bind((self.host, wanted))
            except OSError as exc:
                sock.close()
                self.close()
                raise OSError(exc.errno, f"cannot listen on udp {self.host}:{wanted}: "
                              f"{exc.strerror}") from exc
            port = self.ports[i] = sock.getsockname()[1]
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux doubles it
            if got < RCVBUF_BYTES:
                log.warning("capture: udp receive buffer is %d KB, not %d KB: raise "
                            "net.core.rmem_max (the image sets it) so bursts are not dropped",
                            got // 1024, RCVBUF_BYTES // 1024)
            transport, protocol = await loop.create_datagram_endpoint(
                lambda p=port: _Protocol(self.emit, p, self.forward), sock=sock)  # type: ignore[misc]
            self._endpoints.append((transport, protocol))
            log.info("capture: listening for F1 telemetry on udp %s:%d", self.host, port)

    @property
    def datagrams(self) -> int:
        return sum(p.datagrams for _, p in self._endpoints)

    def alive(self) -> bool:
        """Every socket still open (the gateway's watchdog stops when one is not)."""
        return bool(self._endpoints) and not any(t.is_closing() for t, _ in self._endpoints)

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped on our sockets (full receive buffer), from /proc."""
        return sum(_proc_udp_drops(self.ports))

    def close(self) -> None:
        for transport, _ in self._endpoints:
            transport.close()
        self._endpoints.clear()


def _proc_udp_drops(ports: list[int]) -> list[int]:
    """The `drops` column of /proc/net/udp{,6} for sockets bound to `ports` (Linux only)."""
    wanted = {f"{p:04X}" for p in ports}
    drops = []
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) >= 13 and cols[1].rsplit(":", 1)[-1] in wanted:
                drops.append(int(cols[12]))
    return drops
