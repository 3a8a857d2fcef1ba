"""The relay receiver on real loopback sockets: forged, replayed and broken frames are refused
and counted, good ones keep flowing; a real shim reconnects and delivers what it buffered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from pathlib import Path
from typing import Any

from gateway.capture.irsdk_relay import IrsdkRelay
from gateway.decode.irsdk.frames import seal
from gateway.normalize.iracing_box import IRacingBox
from gateway.shim.config import ShimConfig
from gateway.shim.run import Shim
from tests.irsdk_writer import IrsdkFile, session_yaml

KEY = b"relay-test-pairing-key"


class Collector:
    def __init__(self) -> None:
        self.frames: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, shim: str, kind: str, data: dict[str, Any], ts: int, mono: int) -> None:
        self.frames.append((shim, kind, data))


async def send(port: int, *chunks: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for chunk in chunks:
        writer.write(chunk)
    await writer.drain()
    writer.close()


async def until(predicate: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


def tel(lap: int) -> dict[str, Any]:
    return {"vars": {"LapCompleted": lap}, "full": False}


def test_spoofed_and_replayed_frames_are_refused_and_counted():
    got = Collector()

    async def run() -> IrsdkRelay:
        relay = IrsdkRelay(got, key=KEY, host="127.0.0.1", port=0)
        await relay.start()
        genuine = [seal(KEY, "ann-pc", 100, seq, "tel", tel(seq)) for seq in (1, 2, 3)]
        await send(relay.port, *genuine)
        assert await until(lambda: len(got.frames) == 3)
        spoofed = seal(b"not-the-pairing-key!", "ann-pc", 200, 1, "tel", tel(99))
        await send(relay.port, spoofed)  # someone without the key speaking for Ann
        await send(relay.port, genuine[1], genuine[2])  # recorded frames, played back later
        await send(relay.port, seal(KEY, "ann-pc", 100, 4, "tel", tel(4)))
        assert await until(lambda: len(got.frames) == 4)
        relay.close()
        return relay

    relay = asyncio.run(run())
    assert [f[2]["vars"]["LapCompleted"] for f in got.frames] == [1, 2, 3, 4]
    assert relay.refused == {"bad_hmac": 1, "replayed": 2}
    assert relay.frames == 4


def test_frames_that_fail_to_decode_never_stop_the_receiver_and_several_shims_share_it():
    got = Collector()
    garbage_body = b"\xc1\xc1 not msgpack"
    authentic_garbage = hmac.new(KEY, garbage_body, hashlib.sha256).digest() + garbage_body
    framed = len(authentic_garbage).to_bytes(4, "big") + authentic_garbage
    noise = (40).to_bytes(4, "big") + bytes(range(40))

    async def run() -> IrsdkRelay:
        relay = IrsdkRelay(got, key=KEY, host="127.0.0.1", port=0)
        await relay.start()
        conns = [await asyncio.open_connection("127.0.0.1", relay.port) for _ in range(3)]
        for i, (_, w) in enumerate(conns):
            w.write(framed + noise + seal(KEY, f"pc-{i}", 1, 1, "tel", tel(i)))
            await w.drain()
        assert await until(lambda: len(got.frames) == 3)
        await send(relay.port, (10_000_000).to_bytes(4, "big") + b"x" * 64)  # broken stream
        await send(relay.port, seal(KEY, "pc-9", 1, 1, "tel", tel(9)))  # still listening
        assert await until(lambda: len(got.frames) == 4)
        for _, w in conns:
            w.close()
        relay.close()
        return relay

    relay = asyncio.run(run())
    assert sorted(f[0] for f in got.frames) == ["pc-0", "pc-1", "pc-2", "pc-9"]
    assert relay.refused == {"not_msgpack": 3, "bad_hmac": 3, "oversize": 1}
    assert relay.connections == 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_shim_buffers_while_the_box_is_away_then_delivers_info_and_the_latest_state(
        tmp_path: Path):
    sim = IrsdkFile(tmp_path / "ann.irsdk", session_yaml(car_idx=3))
    port = free_port()
    box = IRacingBox()

    def emit(shim: str, kind: str, data: dict[str, Any], ts: int, mono: int) -> None:
        box.on_frame(shim, kind, data, now_s=mono / 1e9, ts_ns=ts, mono_ns=mono)

    async def run() -> Shim:
        stop = asyncio.Event()
        shim = Shim(ShimConfig(box=f"127.0.0.1:{port}", pairing_key=KEY.decode(), id="ann-pc",
                               hz=200, send_hz=0, simulate=str(sim.path)))
        task = asyncio.create_task(shim.run(stop))
        for lap in range(6):  # the box is not there yet
            sim.step(LapCompleted=lap, SessionTime=10.0 + lap)
            await asyncio.sleep(0.03)
        assert shim.link.connects == 0 and len(shim.link.queue) >= 2
        relay = IrsdkRelay(emit, key=KEY, host="127.0.0.1", port=port)
        await relay.start()
        ok = await until(lambda: box.shims.get("ann-pc") is not None
                         and box.shims["ann-pc"].values.get("LapCompleted") == 5, 15)
        stop.set()
        await task
        relay.close()
        assert ok, "the buffered frames never arrived"
        return shim

    shim = asyncio.run(run())
    view = box.shims["ann-pc"]
    assert view.facts is not None and view.facts.team_name == "Pit  Crew"
    assert shim.link.connects == 1 and not shim.link.queue
    assert view.key == "Pit  Crew@7001#9001#0"


async def connect_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        seen: list[bytes]) -> None:
    """A minimal HTTP CONNECT proxy: one request line, then bytes both ways."""
    request = await reader.readuntil(b"\r\n\r\n")
    seen.append(request.split(b"\r\n", 1)[0])
    host, port = request.split()[1].decode().rsplit(":", 1)
    up_r, up_w = await asyncio.open_connection(host, int(port))
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        dst.close()

    await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer), return_exceptions=True)


def test_a_shim_reaches_the_box_through_an_http_connect_proxy(tmp_path: Path):
    sim = IrsdkFile(tmp_path / "ann.irsdk", session_yaml(car_idx=3))
    got = Collector()
    seen: list[bytes] = []

    async def run() -> None:
        relay = IrsdkRelay(got, key=KEY, host="127.0.0.1", port=0)
        await relay.start()
        proxy = await asyncio.start_server(lambda r, w: connect_proxy(r, w, seen),
                                           "127.0.0.1", 0)
        proxy_port = proxy.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        shim = Shim(ShimConfig(box=f"127.0.0.1:{relay.port}", pairing_key=KEY.decode(),
                               id="ann-pc", hz=100, send_hz=0, simulate=str(sim.path),
                               proxy=f"127.0.0.1:{proxy_port}"))
        task = asyncio.create_task(shim.run(stop))
        assert await until(lambda: any(kind == "tel" for _, kind, _ in got.frames), 10)
        stop.set()
        await task
        proxy.close()
        relay.close()

    asyncio.run(run())
    assert seen and seen[0].startswith(b"CONNECT 127.0.0.1:")
    assert [kind for _, kind, _ in got.frames][:2] == ["info", "tel"]


def test_frames_recorded_before_a_box_restart_are_refused_after_it(tmp_path: Path):
    """The replay marks outlive the box's process: saved within a second while frames
    arrive (a kill loses at most that), and at close."""
    marks = tmp_path / "relay-marks.json"
    got = Collector()
    old = [seal(KEY, "ann-pc", 100, seq, "tel", tel(seq)) for seq in (1, 2, 3)]

    async def life(frames: list[bytes], *, close: bool = True) -> IrsdkRelay:
        relay = IrsdkRelay(got, key=KEY, host="127.0.0.1", port=0, marks_path=marks)
        await relay.start()
        await send(relay.port, *frames)
        assert await until(lambda: relay.frames + sum(relay.refused.values()) == len(frames))
        if close:
            relay.close()
        else:  # killed: only what the periodic save wrote is there
            assert await until(lambda: marks.exists(), 3.0)
        return relay

    first = asyncio.run(life(old, close=False))
    assert first.frames == 3 and json.loads(marks.read_text()) == {"ann-pc": [100, 3]}
    second = asyncio.run(life([old[0], old[2], seal(KEY, "ann-pc", 100, 4, "tel", tel(4)),
                               seal(KEY, "ann-pc", 200, 0, "tel", tel(5))]))
    assert (second.refused["replayed"], second.frames) == (2, 2)  # a restarted shim is welcome
    assert json.loads(marks.read_text()) == {"ann-pc": [200, 0]}
    # What the marks are for: a relay that forgot them takes the old frames again.
    marks.unlink()
    third = asyncio.run(life(old))
    assert third.frames == 3 and not third.refused


def test_unreadable_replay_marks_are_set_aside_and_the_relay_starts(tmp_path: Path, caplog):
    marks = tmp_path / "relay-marks.json"
    marks.write_text("{not json")
    got = Collector()

    async def run() -> IrsdkRelay:
        relay = IrsdkRelay(got, key=KEY, host="127.0.0.1", port=0, marks_path=marks)
        await relay.start()
        await send(relay.port, seal(KEY, "ann-pc", 100, 1, "tel", tel(1)))
        assert await until(lambda: relay.frames == 1)
        relay.close()
        return relay

    assert asyncio.run(run()).frames == 1
    assert "replay marks in" in caplog.text and "unreadable" in caplog.text
    assert json.loads(marks.read_text()) == {"ann-pc": [100, 1]}
