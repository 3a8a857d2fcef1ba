"""One message in, its documents or one dead letter (with a reason code) out: never a crash."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.bridge.filing import CODES, MAX_STATE_BYTES, Filed, file_message
from gateway.uplink.wire import MAX_MESSAGE_BYTES, Envelope, encode
from tests.unit import records_factory as rf

DEV = "box-0001"
EVENTS = f"/devices/{DEV}/events/lap"
STATE = f"/devices/{DEV}/state"


def lap_payload(device: str = DEV, n: int = 1) -> bytes:
    return encode(Envelope(device, "rig-a", rf.SID, "lap", 5,
                           tuple((100 + i, rf.lap(i)) for i in range(1, n + 1))))


def filed(topic: str, payload: bytes) -> Filed:
    return file_message("/devices", topic, payload, mid=3, received_ns=99)


def test_a_good_envelope_becomes_its_documents() -> None:
    f = filed(EVENTS, lap_payload(n=3))
    assert f.code is None and f.records == 3
    assert [(d.collection, d.doc_id) for d in f.docs] == [(rf.SID, "1"), (rf.SID, "2"),
                                                          (rf.SID, "3")]


def unknown_version() -> bytes:
    body = msgpack.unpackb(lap_payload())
    body["v"] = 99
    return msgpack.packb(body)


BAD = [
    ("garbage", EVENTS, b"\xc1\xc1 not msgpack", "malformed"),
    ("not a map", EVENTS, msgpack.packb([1, 2]), "malformed"),
    ("truncated", EVENTS, lap_payload()[:-7], "malformed"),
    ("unknown version", EVENTS, unknown_version(), "unknown_version"),
    ("another device", EVENTS, lap_payload(device="box-9999"), "device_mismatch"),
    ("oversize", EVENTS, b"\x00" * (MAX_MESSAGE_BYTES + 1), "oversize"),
    ("bad topic", f"/devices/{DEV}/config", lap_payload(), "bad_topic"),
    ("state oversize", STATE, b"\x80" + b" " * MAX_STATE_BYTES, "oversize"),
    ("state not a map", STATE, msgpack.packb("up"), "malformed"),
    ("state garbage", STATE, b"\xc1{", "malformed"),
    ("state array in array", STATE, msgpack.packb({"a": [[1]]}), "bad_document"),
]


@pytest.mark.parametrize(("topic", "payload", "code"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_a_bad_message_becomes_one_dead_letter_with_its_reason(
        topic: str, payload: bytes, code: str) -> None:
    f = filed(topic, payload)
    assert f.code == code and f.records == 0 and f.reason
    [dead] = f.docs
    assert dead.collection == "deadletters"
    assert (dead.data["code"], dead.data["topic"], dead.data["payload_bytes"]) == (
        code, topic, len(payload))


def test_a_session_id_firestore_cannot_hold_is_a_bad_document() -> None:
    from dataclasses import replace
    sid = "team/with/slashes"
    env = Envelope(DEV, "rig-a", sid, "lap", 5, ((1, replace(rf.lap(1), session_id=sid)),))
    assert filed(EVENTS, encode(env)).code == "bad_document"


def test_a_state_report_lands_on_the_devices_document_as_a_merge() -> None:
    for payload in (msgpack.packb({"outbox_rows": 3, "version": "0.1"}),
                    json.dumps({"outbox_rows": 3, "version": "0.1"}).encode()):
        [doc] = filed(STATE, payload).docs
        assert (doc.collection, doc.doc_id, doc.merge) == ("devices", DEV, True)
        assert doc.data == {"state": {"outbox_rows": 3, "version": "0.1"}, "state_ns": 99}


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from([EVENTS, STATE, "/devices/x", "/devices//state"]),
       payload=st.binary(max_size=300))
def test_garbage_only_ever_becomes_a_dead_letter_or_a_state(topic: str, payload: bytes) -> None:
    f = filed(topic, payload)
    assert f.code in (*CODES, None)
    if f.code is None:
        assert topic == STATE and f.docs[0].collection == "devices"
    else:
        assert [d.collection for d in f.docs] == ["deadletters"]
