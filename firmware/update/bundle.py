"""The bundle file: an uncompressed tar (the wheels are zips already) of
`manifest.json`, `manifest.sig` and `wheels/<name>.whl`.

`open_bundle` reads it without writing a byte anywhere: signature first, then every wheel's
size and SHA-256 against the manifest. Only a bundle that passed is handed to `extract_wheels`,
which hashes again while it writes (the file may have changed since), so nothing unverified is
ever installed. A truncated or garbled tar is a `BadBundleError`, like a bad signature.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from firmware.update.manifest import (
    MAX_MANIFEST_BYTES,
    BadBundleError,
    Manifest,
    UpdateError,
    Wheel,
    parse_version,
    sign,
    verify,
)

MANIFEST, SIGNATURE, WHEELS = "manifest.json", "manifest.sig", "wheels/"
CHUNK = 1 << 16


def build(wheel_paths: Iterable[Path], *, version: str, package: str, private_pem: bytes,
          out: Path) -> Manifest:
    """Write a signed bundle of `wheel_paths` to `out` (atomically). Returns its manifest."""
    parse_version(version)
    paths = sorted(Path(p) for p in wheel_paths)
    _check_main_wheel(paths, package, version)
    wheels = tuple(Wheel(p.name, _sha256_file(p), p.stat().st_size) for p in paths)
    man = Manifest(version, package, wheels)
    Manifest.from_bytes(man.to_bytes())  # the builder refuses what the box would refuse
    raw = man.to_bytes()
    sig = sign(raw, private_pem)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, raw)
        _add_bytes(tar, SIGNATURE, sig)
        for p in paths:
            tar.add(p, arcname=WHEELS + p.name, recursive=False)
    os.replace(tmp, out)
    return man


def _check_main_wheel(paths: list[Path], package: str, version: str) -> None:
    """The box's health gate waits for the version the running package reports, so the main
    wheel's version must be the bundle's, or every box would roll the update back."""
    dist = package.replace("-", "_").lower()
    found = [p.name.split("-")[1] for p in paths if p.name.split("-")[0].lower() == dist]
    if not found:
        raise UpdateError(f"no wheel of {package} among the wheels")
    if parse_version(found[0]) != parse_version(version):
        raise UpdateError(f"the {package} wheel is version {found[0]}, the bundle says {version}")


def open_bundle(path: Path, public_pem: bytes) -> Manifest:
    """Verify `path` completely (signature, then each wheel's size and hash). Writes nothing."""
    try:
        with tarfile.open(path, "r:") as tar:
            raw = _read_member(tar, MANIFEST, MAX_MANIFEST_BYTES)
            sig = _read_member(tar, SIGNATURE, 1024)
            man = verify(raw, sig, public_pem)
            expected = {WHEELS + w.name for w in man.wheels} | {MANIFEST, SIGNATURE}
            extra = sorted(set(tar.getnames()) - expected)
            if extra:
                raise BadBundleError(f"bundle holds files the manifest does not list: {extra[0]}")
            for w in man.wheels:
                src = _member_file(tar, WHEELS + w.name)
                _copy_checked(src, None, w)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadBundleError(f"bundle {path.name} is truncated or not a bundle: {exc}") from exc
    return man


def extract_wheels(path: Path, man: Manifest, dest: Path) -> list[Path]:
    """Write the verified wheels to `dest`, hashing each again as it is written."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        with tarfile.open(path, "r:") as tar:
            for w in man.wheels:
                target = dest / w.name
                with open(target, "wb") as fh:
                    _copy_checked(_member_file(tar, WHEELS + w.name), fh, w)
                out.append(target)
    except (tarfile.TarError, EOFError) as exc:
        raise BadBundleError(f"bundle {path.name} changed while unpacking: {exc}") from exc
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _member_file(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise BadBundleError(f"bundle lacks {name} (truncated, or not a bundle)") from None
    src = tar.extractfile(member) if member.isfile() else None
    if src is None:
        raise BadBundleError(f"{name} in the bundle is not a regular file")
    return src


def _read_member(tar: tarfile.TarFile, name: str, limit: int) -> bytes:
    src = _member_file(tar, name)
    data = src.read(limit + 1)
    if len(data) > limit:
        raise BadBundleError(f"{name} in the bundle is larger than {limit} bytes")
    return data


def _copy_checked(src: IO[bytes], dst: IO[bytes] | None, w: Wheel) -> None:
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        if size > w.size:
            break
        digest.update(chunk)
        if dst is not None:
            dst.write(chunk)
    if size != w.size:
        raise BadBundleError(f"{w.name}: {size} bytes, the manifest says {w.size} (truncated?)")
    if digest.hexdigest() != w.sha256:
        raise BadBundleError(f"{w.name}: SHA-256 does not match the manifest (tampered)")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
