"""Pure core of the bridge: one MQTT message in, its document writes or one dead letter out.

Refusal reasons (the dead letter's `code`; the bridge counts them):

| code              | when                                                               |
|-------------------|--------------------------------------------------------------------|
| `oversize`        | an events message over 256 KiB, a state message over 64 KiB        |
| `bad_topic`       | a topic that is neither `{prefix}/{id}/events/{kind}` nor `…/state`|
| `unknown_version` | an envelope whose schema version this build does not speak          |
| `malformed`       | not msgpack, not an envelope, a record that does not fit its kind   |
| `device_mismatch` | the envelope names another device than the topic (the broker's ACL |
|                   | proves who published to the topic; the envelope is only a claim)   |
| `bad_document`    | a document the store would refuse (session id no collection name…) |
| `bridge_error`    | a bug in the bridge or its store raised on this message: the reason |
|                   | is the exception, so the message is kept and acknowledged, never  |
|                   | held unacknowledged                                                 |

A state message is the box's own report (`/devices/{id}/state`); its shape belongs to the
uplink, so any msgpack or JSON map is kept as it is on the device's registry document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgpack

from cloud.bridge.layout import LayoutError, dead_letter, device_doc, docs_for, parse_topic
from cloud.store.base import DocWrite, check_write
from cloud.store.errors import DocumentError
from gateway.errors import WireError
from gateway.uplink import wire

MAX_STATE_BYTES = 64 * 1024  # the Cloud IoT Core limit for a state message
CODES = ("oversize", "bad_topic", "unknown_version", "malformed", "device_mismatch",
         "bad_document", "bridge_error")


@dataclass(frozen=True, slots=True)
class Filed:
    """What one message becomes: `docs` to write (a dead letter when `code` is set) and how
    many records it carried."""

    docs: list[DocWrite]
    records: int = 0
    code: str | None = None
    reason: str = ""


class _RefusedError(Exception):
    """Internal: why a message goes to the dead letters."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def file_message(prefix: str, topic: str, payload: bytes, *, mid: int,
                 received_ns: int) -> Filed:
    """The documents for one message; never raises on bad input."""
    try:
        docs, records = _docs(prefix, topic, payload, received_ns)
        for doc in docs:
            check_write(doc)
    except _RefusedError as exc:
        return _refused(topic, payload, exc.code, str(exc), mid, received_ns)
    except DocumentError as exc:
        return _refused(topic, payload, "bad_document", str(exc), mid, received_ns)
    return Filed(docs, records)


def refuse(topic: str, payload: bytes, code: str, reason: str, *, mid: int,
           received_ns: int) -> Filed:
    """A dead letter for a message refused later (e.g. by the store itself)."""
    return _refused(topic, payload, code, reason, mid, received_ns)


def _refused(topic: str, payload: bytes, code: str, reason: str, mid: int,
             received_ns: int) -> Filed:
    doc = dead_letter(topic, payload, reason, mid=mid, received_ns=received_ns, code=code)
    return Filed([doc], 0, code, reason)


def _docs(prefix: str, topic: str, payload: bytes,
          received_ns: int) -> tuple[list[DocWrite], int]:
    parsed = parse_topic(prefix, topic)
    if parsed is None:
        raise _RefusedError("bad_topic", f"not an events or state topic under {prefix!r}")
    device, kind = parsed
    if kind == "state":
        if len(payload) > MAX_STATE_BYTES:
            raise _RefusedError("oversize", f"state message of {len(payload)} bytes "
                          f"(at most {MAX_STATE_BYTES})")
        return [device_doc(device, _state_map(payload), received_ns=received_ns)], 0
    if len(payload) > wire.MAX_MESSAGE_BYTES:
        raise _RefusedError("oversize", f"message of {len(payload)} bytes "
                      f"(at most {wire.MAX_MESSAGE_BYTES})")
    try:
        envs = wire.decode(payload)
    except WireError as exc:
        code = "unknown_version" if str(exc).startswith("unknown schema version") else "malformed"
        raise _RefusedError(code, str(exc)) from exc
    docs: list[DocWrite] = []
    for env in envs:  # one per rig and session of the message; all of one device
        if env.device != device:
            raise _RefusedError("device_mismatch", f"envelope device {env.device!r} is not the "
                                f"topic's device {device!r}")
        try:
            docs += docs_for(env)
        except LayoutError as exc:
            raise _RefusedError("bad_document", str(exc)) from exc
    return docs, sum(len(env.records) for env in envs)


def _state_map(payload: bytes) -> dict[str, Any]:
    """A state report as a map: msgpack first (the uplink's wire format), then JSON."""
    body: Any = None
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException):  # its errors on garbage
        try:
            body = json.loads(payload)
        except ValueError:
            raise _RefusedError("malformed", "state is neither a msgpack nor a JSON map") from None
    if not isinstance(body, dict):
        raise _RefusedError("malformed", f"state is a {type(body).__name__}, not a map")
    return body
