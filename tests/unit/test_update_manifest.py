"""The update manifest and its Ed25519 signature (pure: bytes and keys in, values out)."""

from __future__ import annotations

import json

import pytest

from firmware.update.manifest import (
    BadBundleError,
    Manifest,
    UpdateError,
    Wheel,
    new_fleet_key,
    parse_version,
    sign,
    verify,
)
from gateway.errors import PitboxError

WHEEL = Wheel("pitbox-0.2.0-py3-none-any.whl", "ab" * 32, 1234)


@pytest.fixture(scope="module")
def fleet() -> tuple[bytes, bytes]:
    return new_fleet_key()


@pytest.mark.parametrize(("older", "newer"), [
    ("0.1.0", "0.2.0"), ("0.9", "0.10"), ("1.2", "1.2.1"), ("1.9.9", "2"), ("0.0.1", "0.0.1.1"),
])
def test_versions_compare_as_numbers_not_text(older: str, newer: str) -> None:
    assert parse_version(older) < parse_version(newer)


def test_trailing_zeros_are_the_same_version() -> None:
    assert parse_version("1.2") == parse_version("1.2.0.0")


@pytest.mark.parametrize("bad", ["", "1.2.3rc1", "v1.2", "1..2", "1.2.3.4.5", "-1", "1.2 "])
def test_only_dotted_numbers_are_versions(bad: str) -> None:
    with pytest.raises(BadBundleError):
        parse_version(bad)


def test_sign_then_verify_round_trips(fleet: tuple[bytes, bytes]) -> None:
    private, public = fleet
    man = Manifest("0.2.0", "pitbox", (WHEEL,))
    raw = man.to_bytes()
    assert verify(raw, sign(raw, private), public) == man


def test_a_changed_byte_or_another_key_fails_verification(fleet: tuple[bytes, bytes]) -> None:
    private, public = fleet
    raw = Manifest("0.2.0", "pitbox", (WHEEL,)).to_bytes()
    sig = sign(raw, private)
    with pytest.raises(BadBundleError, match="signature"):
        verify(raw.replace(b"0.2.0", b"9.2.0"), sig, public)
    other_private, _ = new_fleet_key()
    with pytest.raises(BadBundleError, match="signature"):
        verify(raw, sign(raw, other_private), public)
    with pytest.raises(BadBundleError, match="signature"):
        verify(raw, sig[:-1], public)


def test_a_non_ed25519_key_is_refused(fleet: tuple[bytes, bytes]) -> None:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rsa_private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    rsa_public = key.public_key().public_bytes(ser.Encoding.PEM,
                                               ser.PublicFormat.SubjectPublicKeyInfo)
    raw = Manifest("0.2.0", "pitbox", (WHEEL,)).to_bytes()
    with pytest.raises(UpdateError, match="Ed25519"):
        sign(raw, rsa_private)
    with pytest.raises(UpdateError, match="Ed25519"):
        verify(raw, b"x" * 64, rsa_public)


@pytest.mark.parametrize("change", [
    {"format": 2},
    {"wheels": []},
    {"wheels": [{"name": "../../etc/passwd.whl", "sha256": "ab" * 32, "size": 1}]},
    {"wheels": [{"name": "a.whl", "sha256": "xyz", "size": 1}]},
    {"wheels": [{"name": "a.whl", "sha256": "ab" * 32, "size": 1}] * 2},
    {"version": "latest"},
    {"package": None, "version": None},
])
def test_a_malformed_manifest_is_refused(change: dict[str, object]) -> None:
    doc = json.loads(Manifest("0.2.0", "pitbox", (WHEEL,)).to_bytes())
    doc.update(change)
    with pytest.raises(BadBundleError):
        Manifest.from_bytes(json.dumps(doc).encode())


def test_garbage_is_a_bad_bundle_not_a_crash() -> None:
    for raw in (b"", b"\xff\xfe", b"[]", b'{"format": 1}', b"null"):
        with pytest.raises(BadBundleError):
            Manifest.from_bytes(raw)
    assert issubclass(BadBundleError, PitboxError)
