"""`pitbox record` as a user runs it: a real process, real UDP, files read back."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.recorder import CaptureReader, RotatingRecorder, iter_datagrams
from pitbox.demo import SAMPLE

STEP = 50
"""Datagrams sent at once before `pitbox record` must have read them (~70 KB): a third of the
208 KB that Linux's stock net.core.rmem_max leaves a socket. The recorder fsyncs inline at
every rotation, and one slow fsync on a CI disk must not drop what it has yet to read."""


def udp_socket(port: int) -> tuple[int, int]:
    """(bytes waiting in its receive queue, datagrams the kernel dropped) of the UDP socket
    bound to 127.0.0.1:`port`, from /proc/net/udp (Linux, like the box)."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == local:
            return int(cols[4].split(":")[1], 16), int(cols[12])
    raise AssertionError(f"no UDP socket on 127.0.0.1:{port}")


def wait_for_taken(port: int, timeout_s: float = 20.0) -> None:
    """Until the recorder has read every datagram waiting on `port` (bounded)."""
    deadline = time.monotonic() + timeout_s
    while udp_socket(port)[0] and time.monotonic() < deadline:
        time.sleep(0.005)
    assert udp_socket(port)[0] == 0, f"record left datagrams unread for {timeout_s} s"


def test_record_rotates_files_and_reads_back_every_datagram_in_order(tmp_path: Path) -> None:
    sent = [item.payload for item in iter_datagrams(str(SAMPLE))][:400]
    out = tmp_path / "caps"
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "record", "--out", str(out),
                             "--bind", "127.0.0.1", "--port", "0", "--rotate-mb", "0.1",
                             "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port = 0
        for _ in range(5):  # the line that says the port (a small rmem_max: a warning first)
            found = re.search(r"udp 127\.0\.0\.1:(\d+)", proc.stdout.readline())
            if found:
                port = int(found.group(1))
                break
        assert port, "record never said where it listens"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as game:
            for i, payload in enumerate(sent, 1):
                game.sendto(payload, ("127.0.0.1", port))
                if i % STEP == 0 or i == len(sent):  # the recorder must have taken them
                    wait_for_taken(port)
        assert udp_socket(port) == (0, 0)  # nothing waits, nothing was dropped
        time.sleep(1.5)  # one sync interval
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    files = sorted(out.glob("*.pbxcap"))
    assert len(files) >= 4, files  # ~480 KB of datagrams, 100 KB files
    got = [item for f in files for item in CaptureReader(f)]
    assert [g.payload for g in got] == sent
    assert all(g.src.startswith("127.0.0.1:") and g.ts_ns > 0 for g in got)
    assert f"{len(sent)} datagrams" in rest


def test_a_pulled_plug_loses_only_the_torn_tail(tmp_path: Path) -> None:
    rec = RotatingRecorder(tmp_path, started="t")
    payloads = [bytes([i]) * (100 + i) for i in range(50)]
    for i, p in enumerate(payloads):
        rec.write(p, "10.0.0.1:5000", i)
    rec.close()
    (path,) = rec.files
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # the last record half written
    reader = CaptureReader(path)
    assert [c.payload for c in reader] == payloads[:-1]
    assert reader.skipped_bytes > 0
    again = RotatingRecorder(tmp_path, started="t2")  # a restart never appends to a torn file
    again.write(b"x", "10.0.0.1:5000", 1)
    again.close()
    assert again.files[0] != path and [c.payload for c in CaptureReader(again.files[0])] == [b"x"]


def test_replay_says_in_one_line_when_the_capture_has_a_torn_tail(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gateway.sim.f1 import write_rigs_capture
    from pitbox.cli import main

    capture = tmp_path / "cut.pbxcap"
    n = write_rigs_capture(capture, 2, 2025, laps=1, hz=5, lap_time_s=2, num_cars=4)
    capture.write_bytes(capture.read_bytes()[:-10])  # a pulled plug: the last record torn
    got: list[tuple[bytes, tuple[str, int]]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as app:
        app.bind(("127.0.0.1", 0))
        app.settimeout(5)

        def receive() -> None:  # as they come: the 337 KB would overflow a stock-sized buffer
            try:
                while len(got) < n - 1:
                    got.append(app.recvfrom(2048))
            except TimeoutError:
                pass

        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        # At 8x the recorded pace (0.45 s) the replay sleeps ~25 ms after each frame of the
        # two rigs (25 KB at most): the receiver catches up in between, whatever rmem_max is.
        with caplog.at_level("INFO"):
            assert main(["replay", str(capture), "--to",
                         f"127.0.0.1:{app.getsockname()[1]}", "--speed", "8"]) == 0
        receiver.join(10)
    assert len(got) == n - 1  # every intact record, none of the torn one
    assert len({src for _, src in got}) == 2  # the two rigs, each from its own socket
    torn = [r.getMessage() for r in caplog.records if "torn tail" in r.getMessage()]
    assert len(torn) == 1 and torn[0].startswith(f"replay: {capture}: torn tail: ")
