"""Shared parts of the uplink benchmarks (not a benchmark itself): a loopback broker with the
auth plugin and a device key, the gateway as a real process, 20 rigs of simulated F1 traffic
over UDP from their own loopback addresses, and a subscriber that measures, per record, the
time from UDP receipt at the gateway (the record's `mono_ns`, CLOCK_MONOTONIC is shared by the
processes of one host) to its arrival at the subscriber.
"""

from __future__ import annotations

import multiprocessing
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jwt
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from paho.mqtt.enums import CallbackAPIVersion

from cloud.broker.run import Broker
from gateway.sim.f1 import simulate_session
from gateway.uplink import wire

URGENT = ("session", "lap", "event", "state")
LAP_TIME_S = 8.0  # short laps, so laps, pit events and states flow during a short run


def new_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))


class Cloud:
    """Broker + registered device key + bridge account password, in `work`."""

    def __init__(self, work: Path, device_id: str) -> None:
        keys = work / "keys"
        keys.mkdir(parents=True)
        self.device_id = device_id
        self.private, public = new_key()
        (keys / f"{device_id}.pem").write_bytes(public)
        self.base_private, base_public = new_key()
        (keys / "bench-baseline.pem").write_bytes(base_public)
        self.password = secrets.token_urlsafe(12)
        self.broker = Broker(work / "broker", audience="pitbox-bench", keys_dir=keys,
                             accounts={"bridge": self.password}).start()
        self.key_path = work / "device_key.pem"
        self.key_path.write_bytes(self.private)

    def close(self) -> None:
        self.broker.stop()


class Subscriber:
    """Every record's latency (ms) by kind, and every seq seen, from the bridge account.

    `on_message` only stamps and keeps the payload (decoding waits for `collect`), so the
    subscriber never falls behind the broker and adds nothing to what it measures.
    """

    def __init__(self, cloud: Cloud, topic: str = "/devices/+/events/+") -> None:
        self.lock = threading.Lock()
        self.raw: list[tuple[int, bytes]] = []
        self.latency_ms: dict[str, list[tuple[int, float, int]]] = defaultdict(list)
        self.seqs: set[int] = set()
        self.messages = 0
        self._decoded = 0
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"bench-sub-{secrets.token_hex(3)}")
        self.client.username_pw_set("bridge", cloud.password)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(cloud.broker.host, cloud.broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.monotonic_ns()
        with self.lock:
            self.raw.append((now, m.payload))

    def collect(self) -> None:
        """Decode what arrived since the last call: latency = arrival - record's mono_ns."""
        with self.lock:
            todo, self._decoded = self.raw[self._decoded:], len(self.raw)
        for now, payload in todo:
            self.messages += 1
            for env in wire.decode(payload):  # after the fact: `now` was taken on arrival
                for seq, rec in env.records:
                    if seq not in self.seqs:
                        self.seqs.add(seq)
                        self.latency_ms[env.kind].append(
                            (seq, (now - rec.mono_ns) / 1e6, rec.mono_ns))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:22} no records"
    return (f"  {name:22} {len(values):7} records  p50 {percentile(values, 0.5):7.1f} ms  "
            f"p99 {percentile(values, 0.99):7.1f} ms  max {max(values):7.1f} ms")


def baseline_ms(cloud: Cloud, count: int = 300, rate_hz: float = 100.0) -> list[float]:
    """Bare MQTT: a paho client publishing QoS 1 to the same broker, paced; the floor."""
    got: dict[int, int] = {}
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="bench-base-sub")
    sub.username_pw_set("bridge", cloud.password)
    ready = threading.Event()
    sub.on_connect = lambda c, *_: c.subscribe("/devices/bench-baseline/events/+", qos=1)
    sub.on_subscribe = lambda *_: ready.set()

    def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        got[int.from_bytes(m.payload[:4], "big")] = time.monotonic_ns()
        if len(got) >= count:
            done.set()

    sub.on_message = on_message
    sub.connect(cloud.broker.host, cloud.broker.port)
    sub.loop_start()
    assert ready.wait(10)
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 600, "aud": "pitbox-bench"}, cloud.base_private,
                       algorithm="RS256")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline")
    pub.username_pw_set("unused", token)
    pub.connect(cloud.broker.host, cloud.broker.port)
    pub.loop_start()
    sent: dict[int, int] = {}
    for i in range(count):
        sent[i] = time.monotonic_ns()
        pub.publish("/devices/bench-baseline/events/sample", i.to_bytes(4, "big") + b"x" * 300, qos=1)
        time.sleep(1 / rate_hz)
    done.wait(10)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return [(got[i] - sent[i]) / 1e6 for i in got]


def rig_traffic(rigs: int, seconds: float, rate_hz: float = 20.0) -> list[tuple[float, int, bytes]]:
    """(send time s, rig, datagram): each rig a simulated race, started staggered."""
    out = []
    for rig in range(rigs):
        offset = rig * 0.013  # rigs are not in lockstep
        for t, datagram in simulate_session(laps=max(1, int(seconds / LAP_TIME_S) + 1), rate_hz=rate_hz,
                                            seed=100 + rig, lap_time_s=LAP_TIME_S):
            if t > seconds:
                break
            out.append((t + offset, rig, datagram))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def _send(port: int, traffic: list[tuple[float, int, bytes]], rigs: int, stop: Any,
          sent: Any) -> None:
    socks = []
    for i in range(rigs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{2 + i}", 0))
        socks.append(s)
    start = time.monotonic()
    n = 0
    for t, rig, datagram in traffic:
        if stop.is_set():
            break
        delay = start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        socks[rig].sendto(datagram, ("127.0.0.1", port))
        n += 1
        if n % 500 == 0:
            sent.value = n
    sent.value = n
    for s in socks:
        s.close()


class Sender:
    """Sends the traffic in real time from 127.0.0.(2+rig) to the gateway's UDP port, from a
    process of its own (so it takes no time from the subscriber)."""

    def __init__(self, port: int, traffic: list[tuple[float, int, bytes]], rigs: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self._sent = ctx.Value("q", 0)
        self._proc = ctx.Process(target=_send, args=(port, traffic, rigs, self.stop, self._sent),
                                 daemon=True)

    @property
    def sent(self) -> int:
        return int(self._sent.value)

    def start(self) -> None:
        self._proc.start()

    def join(self, timeout: float) -> None:
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(work: Path, cloud: Cloud, port: int, outbox: Path, *, commit_window_ms: int,
                  messages_per_s: float, batch_records: int) -> subprocess.Popen[bytes]:
    cfg = work / "gateway.toml"
    cfg.write_text(f"""
[device]
id = "{cloud.device_id}"
project = "pitbox-bench"
key_path = "{cloud.key_path}"
[capture]
f1_bind = "127.0.0.1"
f1_port = {port}
[outbox]
path = "{outbox}"
commit_window_ms = {commit_window_ms}
budget_mb = 0
[uplink]
host = "{cloud.broker.host}"
port = {cloud.broker.port}
messages_per_s = {messages_per_s}
batch_records = {batch_records}
[leds]
factory = "off"
""")
    log = open(work / "gateway.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "gateway", "run", "--config", str(cfg)],
                            stdout=log, stderr=log, cwd=work)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # bound when the UDP port is taken
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return proc
        finally:
            probe.close()
        time.sleep(0.05)
    stop_gateway(proc)
    raise RuntimeError(f"gateway did not bind UDP {port}; see {work / 'gateway.log'}")


def stop_gateway(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
