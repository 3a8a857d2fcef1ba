"""The wire envelope: what one MQTT message carries. This module is the protocol between the
box and the cloud, so `cloud/` may import it (and the records it carries), nothing else.

One message = a batch of records of one kind, from any of the box's rigs and sessions,
msgpack-encoded (wire version 3):

    {"v": 3, "device": str, "kind": str, "sent_ns": int, "fields": [str, ...],
     "records": [[seq, value, value, ...], ...]}

Each record is an array: its `seq`, then its values in the order `fields` names them (the
record's field names, spelled out once per message instead of once per record: a sample's
names were more than half its bytes). Every record names its own rig and session (fields like
any other), so one message can carry a whole venue's lap line or 50 ms of every rig's samples:
under the 100 messages/s a device may send, per-rig messages would queue a 20-rig box's live
data for seconds. `decode` hands the bridge one `Envelope` per (rig, session) in the message,
records in message order.

Older versions are still read: version 2 carried each record as a map `{"seq": int, "rig":
str, ...fields...}` (a box sends it for rows its outbox stored before version 3), version 1
additionally one rig and session per message, named in the envelope.

`seq` is the device's monotonically increasing outbox sequence, the bridge's dedup key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgpack

from gateway.errors import WireError
from gateway.records import RECORD_TYPES, Record, fields_of, from_dict, values_of

WIRE_VERSION = 3  # the envelope's shape; each record's own fields are records.SCHEMA_VERSION
READS = (1, 2, 3)
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
    cls = RECORD_TYPES[envs[0].kind]
    values = values_of(cls)
    records = [[seq, *values(rec)] for env in envs for seq, rec in env.records]
    return pack(envs[0].device, envs[0].kind, envs[0].sent_ns, fields_of(cls), records)


def pack(device: str, kind: str, sent_ns: int, fields: tuple[str, ...],
         records: list[list[Any]]) -> bytes:
    """Encode a version 3 message: `records` are arrays of seq, then values in `fields` order.
    "records" is the map's last entry (the batcher splices stored arrays in its place)."""
    body = {"v": WIRE_VERSION, "device": device, "kind": kind, "sent_ns": sent_ns,
            "fields": list(fields), "records": records}
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def pack_v2(device: str, kind: str, sent_ns: int, records: list[dict[str, Any]]) -> bytes:
    """Encode a version 2 message, records as maps with their `seq` (what an outbox stored
    before version 3 holds)."""
    body = {"v": 2, "device": device, "kind": kind, "sent_ns": sent_ns, "records": records}
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
    names = _field_names(body) if version >= 3 else None
    groups: dict[tuple[str, str], list[tuple[int, Record]]] = {}
    for i, raw in enumerate(raw_records):
        seq, fields = _record_fields(i, raw, names)
        try:
            rec = from_dict(kind, fields)
        except (TypeError, KeyError) as exc:
            raise WireError(f"record {i} is not a valid {kind}: {exc}") from exc
        if not isinstance(rec.rig, str) or not rec.rig or not isinstance(rec.session_id, str) \
                or not rec.session_id:
            raise WireError(f"record {i} does not name its rig and session")
        if only is not None and (rec.rig, rec.session_id) != only:
            raise WireError(f"record {i} belongs to another rig or session than its envelope")
        groups.setdefault((rec.rig, rec.session_id), []).append((seq, rec))
    return [Envelope(device, rig, session_id, kind, sent_ns, tuple(recs), version)
            for (rig, session_id), recs in groups.items()]


def _field_names(body: dict[str, Any]) -> list[str]:
    names = body.get("fields")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) \
            or len(set(names)) != len(names) or "seq" in names:
        raise WireError("envelope fields must be a list of distinct non-empty names")
    return names


def _record_fields(i: int, raw: Any, names: list[str] | None) -> tuple[int, dict[str, Any]]:
    """(seq, field map) of record `i`: an array under `names` (version 3) or a map."""
    if names is not None:
        if not isinstance(raw, list) or not raw or not isinstance(raw[0], int):
            raise WireError(f"record {i} has no integer seq")
        if len(raw) != len(names) + 1:
            raise WireError(f"record {i} has {len(raw) - 1} values for {len(names)} fields")
        return raw[0], dict(zip(names, raw[1:], strict=True))
    if not isinstance(raw, dict) or not isinstance(raw.get("seq"), int):
        raise WireError(f"record {i} has no integer seq")
    return raw["seq"], {k: v for k, v in raw.items() if k != "seq"}


def str_field(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise WireError(f"envelope field {key!r} must be a non-empty string")
    return value
