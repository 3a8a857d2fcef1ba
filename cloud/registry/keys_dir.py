"""The device registry as the broker sees it: one `<device>.pem` public key per device.
(`registry.Registry` keeps the devices in the store and exports them here.)

The broker's auth plugin reads `<keys_dir>/<device>.pem` on every CONNECT, so adding a file
registers a device and removing it revokes the device at its next connect.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import PitboxError
from gateway.uplink.wire import valid_device_id


class RegistryError(PitboxError, ValueError):
    """A device id or key that cannot be registered."""


def check_device_id(device_id: str) -> str:
    if not valid_device_id(device_id):
        raise RegistryError(f"device id {device_id!r} is not valid: a letter first, then 2-254 of "
                            "letters, digits and - . _ ~ % (not starting with goog, no ..)")
    return device_id


def check_public_key(device_id: str, public_key_pem: bytes) -> None:
    """An RSA public key in PEM (what the plugin verifies RS256 with), or `RegistryError`."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise RegistryError(f"{device_id}: not a PEM public key ({exc})") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise RegistryError(f"{device_id}: the key must be RSA (RS256), got {type(key).__name__}")


def add(keys_dir: Path, device_id: str, public_key_pem: bytes) -> Path:
    check_device_id(device_id)
    check_public_key(device_id, public_key_pem)
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / f"{device_id}.pem"
    tmp = keys_dir / f".{device_id}.tmp"
    tmp.write_bytes(public_key_pem)
    os.chmod(tmp, 0o644)  # the broker drops to its own user and must read it
    os.replace(tmp, path)
    return path


def revoke(keys_dir: Path, device_id: str) -> bool:
    path = keys_dir / f"{check_device_id(device_id)}.pem"
    if not path.exists():
        return False
    path.unlink()
    return True


def list_devices(keys_dir: Path) -> list[str]:
    return sorted(p.stem for p in keys_dir.glob("*.pem")) if keys_dir.is_dir() else []
