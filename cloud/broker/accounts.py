"""Service-account password file for the broker's auth plugin (pure core plus one writer).

One account per line: ``name:pbkdf2_sha256:ITERATIONS:SALT_B64:HASH_B64`` with standard
base64 and a 32-byte PBKDF2-HMAC-SHA256 hash, which ``pitbox_auth.c`` checks with
``PKCS5_PBKDF2_HMAC`` at CONNECT. Accounts are for services (the cloud bridge), never devices:
devices log in with a JWT.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from pathlib import Path

SCHEME = "pbkdf2_sha256"
# The plugin holds names of at most 64 bytes and splits lines on ':'.
_NAME_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9._]{0,63}")


def hash_password(password: str, *, iterations: int = 100_000, salt: bytes | None = None) -> str:
    """Return ``pbkdf2_sha256:ITERATIONS:SALT_B64:HASH_B64`` for ``password``.

    ``salt`` defaults to 16 random bytes; the plugin accepts 1 to 64. 100,000 iterations cost
    the broker ~30-50 ms per service CONNECT, which services make rarely.
    """
    if not 1 <= iterations <= 10_000_000:
        raise ValueError(f"iterations must be 1..10,000,000, not {iterations}")
    salt = secrets.token_bytes(16) if salt is None else salt
    if not 1 <= len(salt) <= 64:
        raise ValueError("salt must be 1..64 bytes")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"{SCHEME}:{iterations}:{b64(salt).decode()}:{b64(digest).decode()}"


def account_line(name: str, password: str) -> str:
    """One accounts-file line (no newline) for service account ``name``."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"bad account name {name!r}: use letters, digits, '-', '.', '_'")
    return f"{name}:{hash_password(password)}"


def write_accounts(path: Path, accounts: dict[str, str]) -> None:
    """Write ``accounts`` (name -> clear password) to ``path`` with mode 0640.

    The file is created with 0640 from the start (no window where it is world-readable) and
    replaced atomically, so a broker starting meanwhile never reads half a file.
    """
    body = "# pitbox broker service accounts: name:pbkdf2_sha256:iterations:salt:hash\n"
    body += "".join(account_line(n, p) + "\n" for n, p in sorted(accounts.items()))
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.fchmod(fd, 0o640)  # O_CREAT's mode is masked by umask; fchmod is not
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(body)
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
