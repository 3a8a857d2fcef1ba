"""`pitbox gateway run` as systemd runs it: a real process, a real $NOTIFY_SOCKET, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from firmware.cli import provision


def test_gateway_tells_systemd_ready_feeds_the_watchdog_and_stops_cleanly(tmp_path: Path) -> None:
    provision(tmp_path, "svc-test-01")
    cfg = tmp_path / "pitbox.toml"
    cfg.write_text(f"""
[device]
id = "svc-test-01"
key_path = "{tmp_path / 'device_key.pem'}"
[capture]
f1_bind = "127.0.0.1"
f1_port = 0
[outbox]
path = "{tmp_path / 'outbox.sqlite'}"
[uplink]
host = "127.0.0.1"
port = 9
""")
    notify_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(10)
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "gateway", "run", "--config", str(cfg)],
                            env={**os.environ, "NOTIFY_SOCKET": notify_path},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        got: list[str] = []
        deadline = time.monotonic() + 15
        while "WATCHDOG=1" not in got and time.monotonic() < deadline:
            got.append(sock.recv(256).decode())
        assert got[0] == "READY=1"
        assert "WATCHDOG=1" in got
        proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in got and time.monotonic() < deadline + 10:
            got.append(sock.recv(256).decode())
        assert "STOPPING=1" in got
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


def test_the_state_message_reports_what_was_dropped_and_why(tmp_path: Path) -> None:
    from gateway import config
    from gateway.service import Gateway

    provision(tmp_path, "svc-test-02")
    cfg = tmp_path / "pitbox.toml"
    cfg.write_text(f"""
[device]
id = "svc-test-02"
key_path = "{tmp_path / 'device_key.pem'}"
[outbox]
path = "{tmp_path / 'outbox.sqlite'}"
[uplink]
host = "127.0.0.1"
port = 9
""")
    gw = Gateway(config.load(cfg), live=False)
    try:
        for junk in (b"\x00" * 5, b"\xe9\x07" + b"\x00" * 40):
            gw.pipeline.on_datagram(junk, "10.0.0.9:20777", 1, 1)
        state = gw._uplink_state()
        assert state["datagrams"] == 2
        assert state["dropped"] == {"short_header": 1, "bad_length": 1}
    finally:
        gw.outbox.close()
