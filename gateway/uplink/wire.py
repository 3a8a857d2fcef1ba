"""The wire envelope: what one MQTT message carries. This module is the protocol between the
box and the cloud, so `cloud/` may import it (and the records it carries), nothing else.

One message = a batch of records of one kind from one session of one rig, msgpack-encoded:

    {"v": 1, "device": str, "rig": str, "session_id": str, "kind": str,
     "sent_ns": int, "records": [{"seq": int, ...record fields...}, ...]}

`seq` is the device's monotonically increasing outbox sequence, the bridge's dedup key.
Field names are spelled out: msgpack keeps them cheap and the bridge can read old versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgpack

from gateway.errors import WireError
from gateway.records import RECORD_TYPES, SCHEMA_VERSION, Record, from_dict

MAX_MESSAGE_BYTES = 256 * 1024  # the Cloud IoT Core limit per publish
# '+' is left out although IoT Core allows it: it is an MQTT wildcard, and the id is a topic level.
_DEVICE_ID = re.compile(r"[a-zA-Z][-a-zA-Z0-9._~%]{2,254}")


def valid_device_id(device_id: str) -> bool:
    """The Cloud IoT Core rule for ids (the broker plugin enforces the same), minus `..`."""
    return (_DEVICE_ID.fullmatch(device_id) is not None and not device_id.lower().startswith("goog")
            and ".." not in device_id)


@dataclass(frozen=True, slots=True)
class Envelope:
    device: str
    rig: str
    session_id: str
    kind: str
    sent_ns: int
    records: tuple[tuple[int, Record], ...]  # (seq, record)
    version: int = SCHEMA_VERSION

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(seq for seq, _ in self.records)


def encode(env: Envelope) -> bytes:
    records = [{"seq": seq, **rec.to_dict()} for seq, rec in env.records]
    return pack(env.device, env.rig, env.session_id, env.kind, env.sent_ns, records)


def pack(device: str, rig: str, session_id: str, kind: str, sent_ns: int,
         records: list[dict[str, Any]]) -> bytes:
    """Encode an envelope whose records are already dicts with their `seq` (the outbox's form)."""
    body = {"v": SCHEMA_VERSION, "device": device, "rig": rig, "session_id": session_id,
            "kind": kind, "sent_ns": sent_ns, "records": records}
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def decode(payload: bytes) -> Envelope:
    """Parse and validate one message. Every problem is a `WireError` saying what is wrong."""
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise WireError(f"not msgpack: {exc}") from exc
    if not isinstance(body, dict):
        raise WireError("envelope is not a map")
    version = body.get("v")
    if version != SCHEMA_VERSION:
        raise WireError(f"unknown schema version {version!r} (this build speaks {SCHEMA_VERSION})")
    try:
        device, rig, session_id, kind = (str_field(body, k) for k in ("device", "rig", "session_id", "kind"))
        sent_ns = body["sent_ns"]
        raw_records = body["records"]
    except KeyError as exc:
        raise WireError(f"envelope lacks {exc.args[0]!r}") from exc
    if kind not in RECORD_TYPES:
        raise WireError(f"unknown record kind {kind!r}")
    if not isinstance(sent_ns, int) or not isinstance(raw_records, list):
        raise WireError("envelope sent_ns/records have the wrong type")
    records = []
    for i, raw in enumerate(raw_records):
        if not isinstance(raw, dict) or not isinstance(raw.get("seq"), int):
            raise WireError(f"record {i} has no integer seq")
        fields = {k: v for k, v in raw.items() if k != "seq"}
        try:
            rec = from_dict(kind, fields)
        except (TypeError, KeyError) as exc:
            raise WireError(f"record {i} is not a valid {kind}: {exc}") from exc
        if rec.rig != rig or rec.session_id != session_id:
            raise WireError(f"record {i} belongs to another rig or session than its envelope")
        records.append((raw["seq"], rec))
    return Envelope(device, rig, session_id, kind, sent_ns, tuple(records), version)


def str_field(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise WireError(f"envelope field {key!r} must be a non-empty string")
    return value
