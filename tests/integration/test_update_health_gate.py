"""The updater's gate reads what a real `pitbox gateway run` reports: a process started as
systemd would (device key and id as credentials, $RUNTIME_DIRECTORY for health.json), talking
to the session's real Mosquitto, with real F1 datagrams on UDP making a session live."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from firmware.cli import provision
from firmware.update.gate import read_report, session_live, wait_healthy
from gateway.recorder import iter_datagrams
from gateway.status.monitor import pitbox_version
from pitbox.demo import SAMPLE
from tests.integration.broker_fixtures import BrokerHandle


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_gate_passes_a_live_gateway_and_sees_its_session(broker: BrokerHandle,
                                                             tmp_path: Path) -> None:
    creds, run, state = tmp_path / "creds", tmp_path / "run", tmp_path / "state"
    for d in (creds, run, state):
        d.mkdir()
    device_id, pub, _ = provision(state, "gate-test-01")
    (broker.keys_dir / f"{device_id}.pem").write_bytes(pub.read_bytes())  # registered
    (creds / "device_key").write_bytes((state / "device_key.pem").read_bytes())
    (creds / "device_id").write_text(device_id + "\n")
    port = free_udp_port()
    cfg = tmp_path / "pitbox.toml"
    cfg.write_text(f"""
[device]
id = "not-the-provisioned-id"
project = "{broker.audience}"
key_path = "{tmp_path / 'nowhere.pem'}"
[capture]
f1_bind = "127.0.0.1"
f1_port = {port}
[outbox]
path = "{state / 'outbox.sqlite'}"
[uplink]
host = "{broker.host}"
port = {broker.port}
prefix = "{broker.prefix}"
""")
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds), "RUNTIME_DIRECTORY": str(run)}
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "gateway", "run", "--config",
                             str(cfg)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    health = run / "health.json"
    try:
        ok, why = wait_healthy(health, pitbox_version(), deadline_s=20, uplink_grace_s=20,
                               poll_s=0.1)
        assert ok and why == "ready, uplink connected", why  # the credential key signed in
        assert health.stat().st_mode & 0o777 == 0o644  # root without CAP_DAC_OVERRIDE reads it
        assert not session_live(health)
        datagrams = [item.payload for item in iter_datagrams(str(SAMPLE))][:50]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            deadline = time.monotonic() + 10
            while not session_live(health) and time.monotonic() < deadline:
                for payload in datagrams:
                    tx.sendto(payload, ("127.0.0.1", port))
                time.sleep(0.2)
        assert session_live(health)
        doc = read_report(health)
        assert doc is not None and doc["capturing"] is True and doc["datagrams"] >= 50
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "status: online" in out and "Traceback" not in out
