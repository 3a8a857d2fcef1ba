"""Session-scoped Mosquitto with the pitbox auth plugin, for every integration test.

``broker`` is one real broker on a free loopback port (audience ``pitbox-test``, a fresh keys
directory, a ``bridge`` service account with a random password), started once per session
and stopped by PID at its end. ``register_device_key`` writes a fresh device public key into
the keys directory and hands back the private PEM for minting tokens.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud.broker.run import Broker

__all__ = ["BrokerHandle", "broker", "new_rsa_key", "register_device_key", "register_key"]

AUDIENCE = "pitbox-test"
BRIDGE_USERNAME = "bridge"


@dataclass(frozen=True, slots=True)
class BrokerHandle:
    """What a test needs to reach the session broker and to provision devices on it."""

    broker: Broker
    keys_dir: Path
    audience: str
    accounts: dict[str, str]
    bridge_username: str
    bridge_password: str

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def prefix(self) -> str:
        return self.broker.prefix


def new_rsa_key() -> tuple[bytes, bytes]:
    """A fresh 2048-bit RSA key as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def register_device_key(keys_dir: Path, device_id: str) -> bytes:
    """Write a new public key as ``<keys_dir>/<device_id>.pem`` (0644); return the private PEM.

    Writes the file directly (no id validation) so tests can plant keys under ids the
    plugin must refuse anyway.
    """
    private, public = new_rsa_key()
    path = keys_dir / f"{device_id}.pem"
    path.write_bytes(public)
    os.chmod(path, 0o644)
    return private


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    root = tmp_path_factory.mktemp("broker")
    keys_dir = root / "keys"
    keys_dir.mkdir()
    accounts = {BRIDGE_USERNAME: secrets.token_urlsafe(16)}
    with Broker(root / "work", audience=AUDIENCE, keys_dir=keys_dir, accounts=accounts) as b:
        yield BrokerHandle(b, keys_dir, AUDIENCE, accounts, BRIDGE_USERNAME,
                           accounts[BRIDGE_USERNAME])


@pytest.fixture
def register_key(broker: BrokerHandle) -> Callable[[str], bytes]:
    """``register_key(device_id) -> private PEM`` on the session broker."""
    return lambda device_id: register_device_key(broker.keys_dir, device_id)
