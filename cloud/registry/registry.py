"""The device registry: one `devices/{id}` document per box in the store, the source of truth,
exported as the broker's key directory (`keys_dir`: the `<id>.pem` files the auth plugin
reads at every CONNECT).

The document holds the registry's fields (`public_key_pem`, `key_sha256`, `added_ns`,
`revoked`, `revoked_ns`) and, written by the bridge from `/devices/{id}/state`, the box's last
reported `state` and `state_ns`. Every registry write is a merge of its own fields, so the two
writers never overwrite each other. A revoked device keeps its document (its history and last
state); only its key file goes, and the broker refuses its next connect.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.registry import keys_dir
from cloud.registry.keys_dir import RegistryError, check_device_id, check_public_key
from cloud.store.base import DocWrite, Store

DEVICES = "devices"  # the collection; the bridge also writes each device's last state there


@dataclass(frozen=True, slots=True)
class Export:
    """What an export changed in the key directory."""

    written: list[str]
    removed: list[str]


class Registry:
    """Devices in `store`, exported to `keys` (a directory). `now` gives wall-clock ns."""

    def __init__(self, store: Store, keys: Path, *,
                 now: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.keys = Path(keys)
        self._now = now

    def add(self, device_id: str, public_key_pem: bytes) -> dict[str, Any]:
        """Register (or re-register, e.g. with a new key) a device; returns its document."""
        check_device_id(device_id)
        check_public_key(device_id, public_key_pem)
        fields = {"id": device_id, "public_key_pem": public_key_pem.decode("ascii"),
                  "key_sha256": hashlib.sha256(public_key_pem).hexdigest(),
                  "added_ns": self._now(), "revoked": False, "revoked_ns": None}
        self.store.write([DocWrite(DEVICES, device_id, fields, merge=True)])
        try:
            keys_dir.add(self.keys, device_id, public_key_pem)
        except OSError as exc:
            raise RegistryError(f"{device_id} is registered, but its key file in {self.keys} "
                                f"could not be written ({exc.strerror}); fix that and run "
                                "`pitbox devices export`") from exc
        return self.show(device_id) or fields

    def revoke(self, device_id: str) -> None:
        """Mark the device revoked and delete its key file. `RegistryError` if it is not
        registered or already revoked."""
        doc = self.show(device_id)
        if doc is None or "public_key_pem" not in doc:
            raise RegistryError(f"no device {device_id!r} in the registry")
        if doc.get("revoked"):
            raise RegistryError(f"device {device_id!r} is already revoked")
        self.store.write([DocWrite(DEVICES, device_id, {"revoked": True,
                                                         "revoked_ns": self._now()}, merge=True)])
        try:
            keys_dir.revoke(self.keys, device_id)
        except OSError as exc:
            raise RegistryError(f"{device_id} is revoked in the registry, but its key file in "
                                f"{self.keys} could not be removed ({exc.strerror}): the broker "
                                "still admits it; fix that and run `pitbox devices export`") from exc

    def show(self, device_id: str) -> dict[str, Any] | None:
        """The device's document (registry fields and last state), or None."""
        return self.store.get(DEVICES, check_device_id(device_id))

    def devices(self, *, include_revoked: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """Registered devices as (id, document), by id. Documents the bridge made from a
        state report of a device the registry never saw are left out."""
        return [(d, doc) for d, doc in self.store.docs(DEVICES)
                if "public_key_pem" in doc and (include_revoked or not doc.get("revoked"))]

    def export(self, *, prune: bool = False) -> Export:
        """Make the key directory match the registry: write missing or changed keys, remove
        revoked devices' keys, and with `prune` also `.pem` files the registry does not
        know (without it they are left: someone else may manage them)."""
        written, removed = [], []
        known = set()
        for device_id, doc in self.devices(include_revoked=True):
            known.add(device_id)
            path = self.keys / f"{device_id}.pem"
            if doc.get("revoked"):
                if keys_dir.revoke(self.keys, device_id):
                    removed.append(device_id)
                continue
            pem = doc["public_key_pem"].encode("ascii")
            if not path.is_file() or path.read_bytes() != pem:
                keys_dir.add(self.keys, device_id, pem)
                written.append(device_id)
        if prune:
            for device_id in keys_dir.list_devices(self.keys):
                if device_id not in known:
                    (self.keys / f"{device_id}.pem").unlink()
                    removed.append(device_id)
        return Export(written, sorted(removed))
