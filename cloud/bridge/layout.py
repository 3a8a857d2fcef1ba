"""Pure core of the bridge: which Firestore documents an envelope becomes (Teamtactics layout).

`env.session_id` is the session's collection name (e.g.
`rig1@f1-2024#silverstone#00000000deadbeef`, see ARCHITECTURE.md). In it:

| record                     | collection               | document            | write |
|----------------------------|--------------------------|---------------------|-------|
| session                    | `{sid}`                  | `info`              | merge |
| lap, own car               | `{sid}`                  | `{lap_no}`          | set   |
| state, own car             | `{sid}`                  | `state`             | merge |
| lap, other car             | `{sid}~field`            | `{car:02d}-{lap_no}`| set   |
| state, other car           | `{sid}~field`            | `{car:02d}-state`   | merge |
| event                      | `{sid}~events`           | `{device}-{seq}`    | set   |
| sample                     | `{sid}~samples`          | `{device}-{seq}`    | set   |
| device state (state topic) | `devices`                | `{device}`          | merge |

Capitalisation: the documents are lower-case `info` and `state`, as ARCHITECTURE.md names
them. Teamtactics' own clients are not consistent about case across versions; if a reader
needs `Info`/`State`, that is one constant each below, not a data migration.

Every document carries `device`, `seq`, `rig` and `ts_ns`. Document ids are derived from the
record alone, so a redelivered message rewrites the same documents: writes are idempotent on
(device, seq) without reading first. The one hazard is ordering on the merged hot documents
(`state`, `info`): `coalesce` folds a batch's writes per document in `seq` order, so an older
state in the same batch never overwrites a newer one. Across batches and bridge instances (a redelivered
old state, or one the other instance held longer) the merged documents are written with
`if_newer`: the store leaves a document alone that already holds a higher `seq`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from cloud.registry.registry import DEVICES
from cloud.store.base import DocWrite
from gateway.errors import PitboxError
from gateway.records import Event, Lap, Record, Sample, Session, StintState
from gateway.uplink.wire import Envelope

INFO_DOC = "info"
STATE_DOC = "state"
FIELD_SUFFIX = "~field"
EVENTS_SUFFIX = "~events"
SAMPLES_SUFFIX = "~samples"
CLIENT = "pitbox"
MAX_ID_BYTES = 1500
DEAD_LETTERS = "deadletters"
DEAD_LETTER_HEX_BYTES = 64  # how much of a refused payload is kept, for a person to look at
_UNSAFE = re.compile(r"[^A-Za-z0-9._+~%-]+")


class LayoutError(PitboxError, ValueError):
    """An envelope that cannot be filed (its session id is not a valid collection name)."""


def docs_for(env: Envelope) -> list[DocWrite]:
    """The document writes for one envelope, in record order. Raises `LayoutError`."""
    sid = env.session_id
    _check_collection(sid)
    return [_doc_for(env.device, sid, seq, rec) for seq, rec in env.records]


def coalesce(writes: Iterable[DocWrite]) -> list[DocWrite]:
    """Fold several writes to one document into one, applying them in `seq` order.

    A full set replaces what came before it; a merge updates top-level keys. Documents
    without a `seq` (dead letters) keep arrival order. The result is ordered by each
    document's first appearance, so the batch stays deterministic.
    """
    groups: dict[tuple[str, str], list[DocWrite]] = {}
    for w in writes:
        groups.setdefault((w.collection, w.doc_id), []).append(w)
    out = []
    for group in groups.values():
        ordered = sorted(group, key=_seq)  # stable: equal seqs keep arrival order
        acc = ordered[0]
        for w in ordered[1:]:
            acc = acc._replace(data={**acc.data, **w.data}) if w.merge else w
        out.append(acc)
    return out


def device_of(prefix: str, topic: str) -> str | None:
    """The device of an events topic `{prefix}/{device}/events/{kind}`, else None."""
    parsed = parse_topic(prefix, topic)
    return parsed[0] if parsed is not None and parsed[1] == "events" else None


def parse_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """(device, "events") for `{prefix}/{device}/events/{kind}`, (device, "state") for
    `{prefix}/{device}/state`, else None."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    if not parts[0]:
        return None
    if len(parts) == 3 and parts[1] == "events" and parts[2]:
        return parts[0], "events"
    if len(parts) == 2 and parts[1] == "state":
        return parts[0], "state"
    return None


def device_doc(device: str, state: dict[str, Any], *, received_ns: int) -> DocWrite:
    """The registry's `devices/{id}` document, updated with the device's last reported state
    (a merge: the registry's own fields, the public key among them, stay)."""
    return DocWrite(DEVICES, device, {"state": state, "state_ns": received_ns}, merge=True)


def dead_letter(topic: str, payload: bytes, reason: str, *, mid: int,
                received_ns: int, code: str = "malformed") -> DocWrite:
    """The `deadletters` document for a message the bridge refuses.

    The id is the topic (made id-safe) plus a hash of topic and payload, so a redelivered
    message rewrites its own dead letter instead of adding another.
    """
    digest = hashlib.sha256(topic.encode("utf-8", "replace") + b"\0" + payload).hexdigest()
    safe = _UNSAFE.sub("_", topic).strip("_")[:200] or "topic"
    data = {"topic": topic, "code": code, "reason": reason, "payload_bytes": len(payload),
            "payload_hex": payload[:DEAD_LETTER_HEX_BYTES].hex(), "mid": mid,
            "received_ns": received_ns}
    return DocWrite(DEAD_LETTERS, f"{safe}-{digest[:16]}", data)


def _seq(w: DocWrite) -> int:
    seq = w.data.get("seq", -1)
    return seq if isinstance(seq, int) else -1


def _doc_for(device: str, sid: str, seq: int, rec: Record) -> DocWrite:
    base = {"device": device, "seq": seq, "rig": rec.rig, "ts_ns": rec.ts_ns}
    if isinstance(rec, Session):
        return DocWrite(sid, INFO_DOC, {**base, **_info(rec)}, merge=True, if_newer=True)
    if isinstance(rec, Lap):
        data = {**_fields(rec), **base}
        if rec.own_car:
            return DocWrite(sid, str(rec.lap_no), data)
        return DocWrite(sid + FIELD_SUFFIX, f"{rec.car_idx:02d}-{rec.lap_no}", data)
    if isinstance(rec, StintState):
        data = {**base, **_state(rec)}
        if rec.own_car:
            return DocWrite(sid, STATE_DOC, data, merge=True, if_newer=True)
        return DocWrite(sid + FIELD_SUFFIX, f"{rec.car_idx:02d}-state", data, merge=True,
                        if_newer=True)
    if isinstance(rec, (Event, Sample)):
        suffix = EVENTS_SUFFIX if isinstance(rec, Event) else SAMPLES_SUFFIX
        return DocWrite(sid + suffix, f"{device}-{seq}", {**_fields(rec), **base})
    raise LayoutError(f"no layout for record kind {rec.KIND!r}")


def _fields(rec: Record) -> dict[str, Any]:
    """The record's own fields, less the session id the collection name already says."""
    data = rec.to_dict()
    del data["session_id"]
    return data


# Session fields the info doc carries under their own names when the record has them.
_INFO_EXTRAS = ("weather", "formula", "duration_s", "track_temp_c", "air_temp_c", "historical")


def _info(rec: Session) -> dict[str, Any]:
    info = {"track": rec.track, "car": rec.car, "game": rec.game,
            "session_type": rec.session_type, "team": rec.team, "drivers": list(rec.drivers),
            "max_laps": rec.total_laps, "max_time_s": rec.time_left_s, "client": CLIENT}
    info.update({k: getattr(rec, k) for k in _INFO_EXTRAS if hasattr(rec, k)})
    return info


def _state(rec: StintState) -> dict[str, Any]:
    # The game's extras (iRacing: driver, tow and repair times, fuel) first, so they can never
    # shadow the stint fields every reader relies on.
    return {**rec.detail,
            "car_idx": rec.car_idx, "stint": rec.stint, "stint_laps": rec.stint_laps,
            "in_pit": rec.in_pit, "pit_entry_s": rec.pit_entry_s, "pit_exit_s": rec.pit_exit_s,
            "pit_stop_s": rec.pit_stop_s, "pit_go_s": rec.pit_go_s}


def _check_collection(sid: str) -> None:
    """Firestore's id rules, with room for the longest suffix."""
    size = len(sid.encode("utf-8", "replace"))
    if ("/" in sid or sid in (".", "..") or (sid.startswith("__") and sid.endswith("__"))
            or not 0 < size <= MAX_ID_BYTES - len(SAMPLES_SUFFIX)):
        raise LayoutError(f"session id {sid!r} is not a valid collection name "
                          "(no '/', not '.' or '..', at most ~1,500 bytes)")
