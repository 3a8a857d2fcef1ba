"""The update manifest: what a bundle holds (version, wheels, their sizes and SHA-256), and its
Ed25519 signature by the fleet's key. Pure: bytes and keys in, values or `UpdateError` out.

The signature covers the manifest's exact bytes; the manifest covers every wheel by hash. So
one signature check plus one hash per wheel authenticates the whole bundle, before anything is
unpacked. The box holds only the fleet's public key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import PitboxError

FORMAT = 1
MAX_MANIFEST_BYTES = 64 * 1024
_VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+-]{1,200}\.whl$")  # a plain file name: no path, no ".."
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UpdateError(PitboxError, RuntimeError):
    """An update was refused or failed; the message says why and what still runs."""


class BadBundleError(UpdateError, ValueError):
    """The bundle is not authentic or not intact (signature, hash, size, truncation)."""


def parse_version(text: str) -> tuple[int, ...]:
    """"1.2.10" → (1, 2, 10). Only dotted numbers: ordering must not be open to debate."""
    if not isinstance(text, str) or not _VERSION.match(text):
        raise BadBundleError(f"version {text!r} is not dotted numbers like 1.4.2")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


@dataclass(frozen=True, slots=True)
class Wheel:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    package: str  # the distribution that provides `pitbox` (the others are its dependencies)
    wheels: tuple[Wheel, ...]

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, "version": self.version, "package": self.package,
               "wheels": [{"name": w.name, "sha256": w.sha256, "size": w.size}
                          for w in self.wheels]}
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"

    @staticmethod
    def from_bytes(raw: bytes) -> Manifest:
        """Parse a manifest whose signature has already been checked."""
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT:
                raise BadBundleError(f"manifest format {doc.get('format')!r}, want {FORMAT}")
            wheels = tuple(Wheel(str(w["name"]), str(w["sha256"]), int(w["size"]))
                           for w in doc["wheels"])
            man = Manifest(str(doc["version"]), str(doc["package"]), wheels)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadBundleError(f"manifest is not valid: {exc}") from exc
        parse_version(man.version)
        names = [w.name for w in man.wheels]
        if not names or len(set(names)) != len(names):
            raise BadBundleError("manifest lists no wheels, or one twice")
        for w in man.wheels:
            if not _WHEEL.match(w.name) or not _SHA256.match(w.sha256) or w.size < 0:
                raise BadBundleError(f"manifest entry {w.name!r} is not a plain wheel with a hash")
        return man


def sign(manifest_bytes: bytes, private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UpdateError("the fleet signing key must be Ed25519")
    return key.sign(manifest_bytes)


def verify(manifest_bytes: bytes, signature: bytes, public_pem: bytes) -> Manifest:
    """The manifest, if `signature` is the fleet key's over exactly these bytes."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except ValueError as exc:
        raise UpdateError(f"the fleet public key is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UpdateError("the fleet public key must be Ed25519")
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BadBundleError("signature does not verify with the fleet key") from None
    return Manifest.from_bytes(manifest_bytes)


def new_fleet_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh Ed25519 key, for the fleet owner's machine."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public
