"""The wire envelope: what one MQTT message carries. This module is the protocol between the
box and the cloud, so `cloud/` may import it (and the records it carries), nothing else.

One message = a batch of records of one kind, from any of the box's rigs and sessions,
msgpack-encoded (wire version 2):

    {"v": 2, "device": str, "kind": str, "sent_ns": int,
     "records": [{"seq": int, "rig": str, "session_id": str, ...record fields...}, ...]}

Every record names its own rig and session, so one message can carry a whole venue's lap line
or 50 ms of every rig's samples: under the 100 messages/s a device may send, per-rig messages
would queue a 20-rig box's live data for seconds. `decode` hands the bridge one `Envelope` per
(rig, session) in the message, records in message order. Version 1 (one rig and session per
message, named in the envelope) is still read.

`seq` is the device's monotonically increasing outbox sequence, the bridge's dedup key.
Field names are spelled out: msgpack keeps them cheap and the bridge can read old versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgpack

from gateway.errors import WireError
from gateway.records import RECORD_TYPES, Record, from_dict

WIRE_VERSION = 2  # the envelope's shape; each record's own fields are records.SCHEMA_VERSION
READS = (1, 2)
MAX_MESSAGE_BYTES = 256 * 1024  # the Cloud IoT Core limit per publish
# '+' is left out although IoT Core allows it: it is an MQTT wildcard, and the id is a topic level.
_DEVICE_ID = re.compile(r"[a-zA-Z][-a-zA-Z0-9._~%]{2,254}")


def valid_device_id(device_id: str) -> bool:
    """The Cloud IoT Core rule for ids (the broker plugin enforces the same), minus `..`."""
    return (_DEVICE_ID.fullmatch(device_id) is not None and not device_id.lower().startswith("goog")
            and ".." not in device_id)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The records of one rig and session out of one message."""

    device: str
    rig: str
    session_id: str
    kind: str
    sent_ns: int
    records: tuple[tuple[int, Record], ...]  # (seq, record)
    version: int = WIRE_VERSION

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(seq for seq, _ in self.records)


def encode(*envs: Envelope) -> bytes:
    """One message of the envelopes' records (all of one device and kind), in their order."""
    if not envs or len({(e.device, e.kind) for e in envs}) != 1:
        raise ValueError("one message carries records of one device and one kind")
    records = [{"seq": seq, **rec.to_dict()} for env in envs for seq, rec in env.records]
    return pack(envs[0].device, envs[0].kind, envs[0].sent_ns, records)


def pack(device: str, kind: str, sent_ns: int, records: list[dict[str, Any]]) -> bytes:
    """Encode a message whose records are already dicts with their `seq` (the outbox's form)."""
    body = {"v": WIRE_VERSION, "device": device, "kind": kind, "sent_ns": sent_ns,
            "records": records}
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def decode(payload: bytes) -> list[Envelope]:
    """Parse and validate one message into one envelope per (rig, session), in order of
    first appearance. Every problem is a `WireError` saying what is wrong."""
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise WireError(f"not msgpack: {exc}") from exc
    if not isinstance(body, dict):
        raise WireError("envelope is not a map")
    version = body.get("v")
    if version not in READS:
        raise WireError(f"unknown schema version {version!r} (this build reads "
                        f"{', '.join(map(str, READS))})")
    try:
        device, kind = (str_field(body, k) for k in ("device", "kind"))
        # Version 1 named the one rig and session of all its records in the envelope.
        only = (str_field(body, "rig"), str_field(body, "session_id")) if version == 1 else None
        sent_ns = body["sent_ns"]
        raw_records = body["records"]
    except KeyError as exc:
        raise WireError(f"envelope lacks {exc.args[0]!r}") from exc
    if kind not in RECORD_TYPES:
        raise WireError(f"unknown record kind {kind!r}")
    if not isinstance(sent_ns, int) or not isinstance(raw_records, list):
        raise WireError("envelope sent_ns/records have the wrong type")
    groups: dict[tuple[str, str], list[tuple[int, Record]]] = {}
    for i, raw in enumerate(raw_records):
        if not isinstance(raw, dict) or not isinstance(raw.get("seq"), int):
            raise WireError(f"record {i} has no integer seq")
        fields = {k: v for k, v in raw.items() if k != "seq"}
        try:
            rec = from_dict(kind, fields)
        except (TypeError, KeyError) as exc:
            raise WireError(f"record {i} is not a valid {kind}: {exc}") from exc
        if not isinstance(rec.rig, str) or not rec.rig or not isinstance(rec.session_id, str) \
                or not rec.session_id:
            raise WireError(f"record {i} does not name its rig and session")
        if only is not None and (rec.rig, rec.session_id) != only:
            raise WireError(f"record {i} belongs to another rig or session than its envelope")
        groups.setdefault((rec.rig, rec.session_id), []).append((raw["seq"], rec))
    return [Envelope(device, rig, session_id, kind, sent_ns, tuple(recs), version)
            for (rig, session_id), recs in groups.items()]


def str_field(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise WireError(f"envelope field {key!r} must be a non-empty string")
    return value
