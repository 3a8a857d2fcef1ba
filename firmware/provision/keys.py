"""The device's RSA key: made on the box, kept on the box (0600), never printed or sent.
Only its public half leaves, in the line the fleet owner runs to register the device.

An existing key is never overwritten, but it is checked: one that group or others can read (a
copy restored from a backup, a careless `chmod`) is set back to 0600, with a warning that it
may have leaked and how to rotate it; one we cannot fix (owned by another user) is an error."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import PitboxError


class ProvisionError(PitboxError, RuntimeError):
    """Provisioning could not complete (e.g. an unreadable existing key)."""


log = logging.getLogger("pitbox.provision")
KEY_MODE = 0o600


def ensure_device_key(path: Path, *, bits: int = 2048) -> bool:
    """Create the key at `path` unless one exists (then close it to group and others). Returns
    True if it made a new key."""
    if path.exists():
        secure_existing_key(path)
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


def secure_existing_key(path: Path) -> int | None:
    """Set an existing key that group or others can access back to 0600. Returns the mode it
    had if it changed it, else None. Raises ProvisionError if it cannot."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        raise ProvisionError(f"cannot check device key {path}: {exc.strerror}") from exc
    if not mode & 0o077:
        return None
    try:
        os.chmod(path, KEY_MODE)
    except OSError as exc:
        raise ProvisionError(f"device key {path} has mode {mode:04o} (others can read it) and "
                             f"cannot be made 0600: {exc.strerror}; as its owner run "
                             f"`chmod 600 {path}`, then rotate the key") from exc
    log.warning("device key %s was mode %04o, open to others; it is 0600 now. If anyone may "
                "have copied it, rotate it: pitbox provision --rotate", path, mode)
    return mode


def public_pem(private_path: Path) -> bytes:
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ProvisionError(f"cannot read device key {private_path}: {exc}") from exc
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
