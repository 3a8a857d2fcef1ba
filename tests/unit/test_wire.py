import msgpack
import pytest

from gateway.errors import WireError
from gateway.records import packable
from gateway.uplink import wire
from tests.unit import records_factory as rf


def envelope(kind: str, records: list) -> wire.Envelope:
    return wire.Envelope("dev-1", "rig-a", rf.SID, kind, 123, tuple(enumerate(records, start=10)))


@pytest.mark.parametrize("kind,records", [
    ("session", [rf.session()]),
    ("lap", [rf.lap(1), rf.lap(2, own_car=False, car_idx=5)]),
    ("event", [rf.event()]),
    ("state", [rf.state()]),
    ("sample", [rf.sample(i) for i in range(20)]),
])
def test_every_kind_round_trips(kind, records):
    env = envelope(kind, records)
    assert wire.decode(wire.encode(env)) == [env]


def body(**changes):
    raw = msgpack.unpackb(wire.encode(envelope("lap", [rf.lap(1)])), raw=False)
    raw.update(changes)
    return msgpack.packb(raw, use_bin_type=True)


@pytest.mark.parametrize("payload,message", [
    (b"\xc1garbage", "not msgpack"),
    (msgpack.packb([1, 2]), "not a map"),
    (body(v=99), "unknown schema version 99"),
    (body(kind="telemetry"), "unknown record kind"),
    (body(device=""), "'device' must be a non-empty string"),
    (body(records=[{"lap_no": 1}]), "no integer seq"),
    (body(records=[{"seq": 1, "lap_no": 1}]), "not a valid lap"),
    (body(v=1), "lacks 'rig'"),  # version 1 named the rig and session in the envelope
    (body(v=1, rig="rig-b", session_id=rf.SID), "another rig or session"),
    (body(records=[{"seq": 1, **rf.lap(1).to_dict(), "rig": ""}]), "rig and session"),
])
def test_bad_messages_raise_a_clear_wire_error(payload, message):
    with pytest.raises(WireError, match=message):
        wire.decode(payload)


def test_one_message_carries_many_rigs_and_decodes_to_one_envelope_each_in_order():
    a = wire.Envelope("dev-1", "rig-a", rf.SID, "lap", 5, ((1, rf.lap(1)), (3, rf.lap(2))))
    other_sid = "rig-b@x#y#1"
    b = wire.Envelope("dev-1", "rig-b", other_sid, "lap", 5,
                      ((2, rf.lap(1, rig="rig-b", sid=other_sid)),))
    payload = wire.encode(a, b)
    assert wire.decode(payload) == [a, b]
    raw = msgpack.unpackb(payload, raw=False)
    assert raw["v"] == 2 and "rig" not in raw and [r["seq"] for r in raw["records"]] == [1, 3, 2]
    with pytest.raises(ValueError, match="one kind"):
        wire.encode(a, wire.Envelope("dev-1", "rig-a", rf.SID, "event", 5, ((4, rf.event()),)))


def test_a_version_1_message_is_still_read():
    env = envelope("lap", [rf.lap(1), rf.lap(2)])
    raw = msgpack.unpackb(wire.encode(env), raw=False)
    raw.update(v=1, rig=env.rig, session_id=env.session_id)
    (got,) = wire.decode(msgpack.packb(raw, use_bin_type=True))
    assert got.records == env.records and got.version == 1


def test_unknown_record_field_is_refused():
    raw = msgpack.unpackb(wire.encode(envelope("lap", [rf.lap(1)])), raw=False)
    raw["records"][0]["surprise"] = 1
    with pytest.raises(WireError, match="surprise"):
        wire.decode(msgpack.packb(raw))


@pytest.mark.parametrize("device,ok", [
    ("pitbox-01", True), ("a.b_c~d%e-f", True), ("ab", False), ("1abc", False),
    ("google-box", False), ("a/../b", False), ("dev+#", False), ("a+b", False), ("GOOGbox", False), ("x" * 256, False),
])
def test_device_ids_follow_the_cloud_iot_rule(device, ok):
    assert wire.valid_device_id(device) is ok


@pytest.mark.parametrize("record", [rf.session(), rf.lap(1), rf.event(), rf.state(), rf.sample(3)])
def test_the_outboxs_fast_body_is_the_same_bytes_as_the_records_dict(record):
    assert msgpack.packb(packable(record)) == msgpack.packb(record.to_dict())
