"""Shared parts of the uplink and fault tests: a recording subscriber on the bridge account,
a device key registered with a broker, multi-rig traffic, bounded waits, TLS test certs.

Everything here is real: paho clients on loopback, keys generated per call.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from gateway.sim.f1 import simulate_session
from gateway.uplink import wire
from tests.integration.broker_fixtures import new_rsa_key


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def register(keys_dir: Path, device_id: str) -> bytes:
    """A fresh device key, its public half registered; returns the private PEM."""
    private, public = new_rsa_key()
    (keys_dir / f"{device_id}.pem").write_bytes(public)
    return private


class Recorder:
    """The bridge account's view of every event and state message under `prefix`."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 prefix: str = "/devices", client_id: str = "") -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes, int]] = []  # topic, payload, receipt ns
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=client_id or f"rec-{time.monotonic_ns()}")
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{prefix}/+/events/+", 1), (f"{prefix}/+/state", 1)])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()
        assert self.subscribed.wait(10), "recorder did not subscribe"

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload), time.monotonic_ns()))

    def envelopes(self) -> list[wire.Envelope]:
        with self.lock:
            msgs = list(self.messages)
        return [env for t, p, _ in msgs if "/events/" in t for env in wire.decode(p)]

    def seqs(self) -> list[int]:
        return [seq for env in self.envelopes() for seq in env.seqs]

    def states(self) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith("/state")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rig_traffic(rigs: int, *, laps: int, rate_hz: float, lap_time_s: float,
                seed: int = 1) -> Iterator[tuple[float, int, bytes]]:
    """(session_time_s, rig index, datagram) of `rigs` simulated races, merged in time order."""
    streams = [simulate_session(laps=laps, rate_hz=rate_hz, seed=seed + i, lap_time_s=lap_time_s)
               for i in range(rigs)]
    heads: list[tuple[float, int, bytes] | None] = []
    for i, s in enumerate(streams):
        t, d = next(s)
        heads.append((t, i, d))
    for _ in range(10_000_000):  # bounded by the sessions' own lengths
        live = [h for h in heads if h is not None]
        if not live:
            return
        t, i, d = min(live, key=lambda h: (h[0], h[1]))
        yield t, i, d
        nxt = next(streams[i], None)
        heads[i] = None if nxt is None else (nxt[0], i, nxt[1])


def rig_sockets(rigs: int) -> list[socket.socket]:
    """One UDP socket per rig, each on its own loopback address (127.0.0.2, .3, …), so the
    gateway sees `rigs` distinct sources."""
    out = []
    for i in range(rigs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{2 + i}", 0))
        out.append(s)
    return out


def tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pitbox test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def box_config(tmp: Path, host: str, port: int, device_id: str, keys_dir: Path,
               audience: str = "pitbox-faults", **sections: dict[str, Any]) -> Any:
    """A gateway config for an in-process box whose key is registered in `keys_dir`."""
    from gateway import config

    box = tmp / "box"
    box.mkdir(exist_ok=True)
    (box / "device_key.pem").write_bytes(register(keys_dir, device_id))
    base = {"device": {"id": device_id, "project": audience,
                       "key_path": str(box / "device_key.pem")},
            "capture": {"f1_bind": "127.0.0.1", "f1_port": 0},
            "outbox": {"path": str(box / "outbox.sqlite")},
            "uplink": {"host": host, "port": port},
            "leds": {"factory": "off"}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return config.with_overrides(config.load(None), **base)


async def feed(gw: Any, traffic: list[tuple[int, bytes]], *, rate: float,
               until: Callable[[], bool] | None = None) -> int:
    """Hand `traffic` to the box's pipeline as if each rig's datagrams came from its own
    address, `rate` datagrams/s; stops early when `until()` says so. Returns how many."""
    import asyncio

    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    for rig, datagram in traffic:
        gw.pipeline.on_datagram(datagram, f"127.0.0.{2 + rig}:20777", time.time_ns(),
                                time.monotonic_ns())
        n += 1
        if n % 50 == 0:
            ahead = n / rate - (loop.time() - start)
            await asyncio.sleep(max(0.0, ahead))
            if until is not None and until():
                break
    return n
