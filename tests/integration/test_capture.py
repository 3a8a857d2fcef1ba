"""Capture on real UDP sockets: many rigs, extra listening ports, forwarding, bad datagrams."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import msgpack
import pytest

from firmware.cli import provision
from gateway import config
from gateway.errors import ConfigError
from gateway.recorder import iter_datagrams
from gateway.service import Gateway
from pitbox.demo import SAMPLE

DATAGRAMS = [item.payload for item in iter_datagrams(str(SAMPLE))][:300]


def offline_gateway(tmp: Path, **capture: object) -> Gateway:
    provision(tmp, "capture-test-01")
    cfg = config.with_overrides(
        config.load(None),
        device={"id": "capture-test-01", "key_path": str(tmp / "device_key.pem")},
        capture={"f1_bind": "127.0.0.1", "f1_port": 0, **capture},
        outbox={"path": str(tmp / "outbox.sqlite")},
        uplink={"host": "127.0.0.1", "port": 9})  # nothing listens: the box is offline
    return Gateway(cfg)


async def until(predicate, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return bool(predicate())


def test_rigs_are_told_apart_by_source_and_by_listening_port(tmp_path: Path) -> None:
    gw = offline_gateway(tmp_path, f1_extra_ports=(0,))

    async def run() -> None:
        await gw.start()
        main_port, extra_port = gw.capture.ports
        assert extra_port != main_port and extra_port > 0
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for payload in DATAGRAMS:
                senders[0].sendto(payload, ("127.0.0.1", main_port))
                senders[1].sendto(payload, ("127.0.0.1", main_port))
                senders[2].sendto(payload, ("127.0.0.1", extra_port))
                await asyncio.sleep(0)
            assert await until(lambda: gw.pipeline.datagrams == 3 * len(DATAGRAMS))
        finally:
            for s in senders:
                s.close()
        await gw.stop()

    asyncio.run(run())
    assert len(gw.pipeline.rigs) == 3, sorted(gw.pipeline.rigs)
    assert "127.0.0.1" in gw.pipeline.rigs
    assert sum(1 for name in gw.pipeline.rigs if name.startswith("127.0.0.1:")) == 2
    assert gw.pipeline.records["session"] == 3  # each rig its own session
    assert not gw.pipeline.dropped


def test_every_datagram_is_forwarded_unchanged_and_a_dead_target_costs_nothing(
        tmp_path: Path) -> None:
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another telemetry app
    app.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    app.bind(("127.0.0.1", 0))
    app.settimeout(5)
    app_port = app.getsockname()[1]
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there now: the kernel answers with ICMP refusals
    gw = offline_gateway(tmp_path, forward=[f"127.0.0.1:{dead_port}",
                                            f"127.0.0.1:{app_port}"])
    received: list[bytes] = []

    async def run() -> None:
        await gw.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as game:
            for payload in DATAGRAMS:
                game.sendto(payload, ("127.0.0.1", gw.capture.port))
                await asyncio.sleep(0)
        assert await until(lambda: gw.pipeline.datagrams == len(DATAGRAMS))
        await gw.stop()

    asyncio.run(run())
    for _ in DATAGRAMS:
        received.append(app.recv(2048))
    app.close()
    assert received == DATAGRAMS
    assert gw.forwarder is not None
    assert gw.forwarder.sent[f"127.0.0.1:{app_port}"] == len(DATAGRAMS)
    assert gw.forwarder.failed[f"127.0.0.1:{app_port}"] == 0
    dead_key = f"127.0.0.1:{dead_port}"
    assert gw.forwarder.failed[dead_key] > 0  # refusals counted …
    assert gw.forwarder.sent[dead_key] + gw.forwarder.failed[dead_key] == len(DATAGRAMS)
    assert gw.pipeline.datagrams == len(DATAGRAMS)  # … and capture saw everything


def test_bad_datagrams_are_counted_by_reason_and_capture_carries_on(tmp_path: Path) -> None:
    gw = offline_gateway(tmp_path)
    junk = [b"", b"\x00", b"\xe8\x07" + bytes(40), DATAGRAMS[0][:-1], DATAGRAMS[0] + b"\x00",
            b"\xff\xff" + DATAGRAMS[0][2:]]

    async def run() -> None:
        await gw.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as game:
            for payload in junk + DATAGRAMS:
                game.sendto(payload, ("127.0.0.1", gw.capture.port))
                await asyncio.sleep(0)
        assert await until(lambda: gw.pipeline.datagrams == len(junk) + len(DATAGRAMS))
        await gw.stop()

    asyncio.run(run())
    assert sum(gw.pipeline.dropped.values()) == len(junk)
    assert {"short_header", "bad_length", "unknown_format"} <= set(gw.pipeline.dropped)
    assert gw.pipeline.records["session"] == 1 and gw.pipeline.records["sample"] > 0
    assert gw.capture.kernel_drops() == 0


def test_a_forward_target_that_is_not_host_port_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"capture\.forward\[1\]"):
        offline_gateway(tmp_path, forward=["127.0.0.1:20778", "nope"])


def test_a_replay_marks_its_sessions_historical_and_live_capture_does_not(
        tmp_path: Path) -> None:
    live, replay = offline_gateway(tmp_path), offline_gateway(tmp_path / "r", )
    replay.outbox.close()
    replay = Gateway(replay.cfg, live=False)
    marks = []
    for gw in (live, replay):
        for item in iter_datagrams(str(SAMPLE)):
            gw.pipeline.on_datagram(item.payload, item.src, item.ts_ns, 0)
        gw.pipeline.commit()
        rows = [r for r in gw.outbox.claim(10_000) if r.kind == "session"]
        marks.append([msgpack.unpackb(r.body)["historical"] for r in rows])
        gw.outbox.close()
    assert marks == [[False], [True]]
