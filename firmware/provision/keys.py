"""The device's RSA key: made on the box, kept on the box (0600), never printed or sent.
Only its public half leaves, in the line the fleet owner runs to register the device."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import PitboxError


class ProvisionError(PitboxError, RuntimeError):
    """Provisioning could not complete (e.g. an unreadable existing key)."""


def ensure_device_key(path: Path, *, bits: int = 2048) -> bool:
    """Create the key at `path` unless one exists. Returns True if it made a new key."""
    if path.exists():
        return False
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # a pulled plug leaves either no key or a whole one
    return True


def public_pem(private_path: Path) -> bytes:
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"cannot read device key {private_path}: {exc}") from exc
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
