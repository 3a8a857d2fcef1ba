import msgpack
import pytest

from gateway.errors import WireError
from gateway.records import Lap, fields_of, values_of
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


def body_v2(**changes):
    raw = msgpack.unpackb(wire.pack_v2("dev-1", "lap", 123, [{"seq": 10, **rf.lap(1).to_dict()}]),
                          raw=False)
    raw.update(changes)
    return msgpack.packb(raw, use_bin_type=True)


LAP_VALUES = list(values_of(Lap)(rf.lap(1)))
FIELDS = list(fields_of(Lap))


@pytest.mark.parametrize("payload,message", [
    (b"\xc1garbage", "not msgpack"),
    (msgpack.packb([1, 2]), "not a map"),
    (body(v=99), "unknown schema version 99"),
    (body(kind="telemetry"), "unknown record kind"),
    (body(device=""), "'device' must be a non-empty string"),
    (body(records=[{"seq": 1, "lap_no": 1}]), "no integer seq"),  # version 3: arrays
    (body(records=[["1", *LAP_VALUES]]), "no integer seq"),
    (body(records=[[1, *LAP_VALUES[:-1]]]), f"{len(FIELDS) - 1} values for {len(FIELDS)} fields"),
    (body(fields=None), "fields must be a list"),
    (body(fields=[*FIELDS[:-1], FIELDS[0]]), "distinct"),
    (body(fields=["seq", *FIELDS[1:]]), "distinct non-empty names"),
    (body(fields=[*FIELDS[:-1], "surprise"]), "not a valid lap.*surprise"),
    (body(records=[[1, "", *LAP_VALUES[1:]]]), "rig and session"),
    (body_v2(records=[{"lap_no": 1}]), "no integer seq"),
    (body_v2(records=[{"seq": 1, "lap_no": 1}]), "not a valid lap"),
    (body_v2(v=1), "lacks 'rig'"),  # version 1 named the rig and session in the envelope
    (body_v2(v=1, rig="rig-b", session_id=rf.SID), "another rig or session"),
    (body_v2(records=[{"seq": 1, **rf.lap(1).to_dict(), "rig": ""}]), "rig and session"),
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
    assert raw["v"] == 3 and "rig" not in raw and [r[0] for r in raw["records"]] == [1, 3, 2]
    assert raw["fields"] == FIELDS  # the names once, each record an array of its values
    with pytest.raises(ValueError, match="one kind"):
        wire.encode(a, wire.Envelope("dev-1", "rig-a", rf.SID, "event", 5, ((4, rf.event()),)))


def v2_of(env: wire.Envelope) -> dict:  # type: ignore[type-arg]
    return msgpack.unpackb(wire.pack_v2(env.device, env.kind, env.sent_ns,
                                        [{"seq": seq, **rec.to_dict()} for seq, rec in env.records]),
                           raw=False)


def test_versions_1_and_2_are_still_read():
    env = envelope("lap", [rf.lap(1), rf.lap(2)])
    (got,) = wire.decode(msgpack.packb(v2_of(env), use_bin_type=True))
    assert got.records == env.records and got.version == 2
    raw = v2_of(env)
    raw.update(v=1, rig=env.rig, session_id=env.session_id)
    (got,) = wire.decode(msgpack.packb(raw, use_bin_type=True))
    assert got.records == env.records and got.version == 1


def test_unknown_record_field_is_refused():
    raw = v2_of(envelope("lap", [rf.lap(1)]))
    raw["records"][0]["surprise"] = 1
    with pytest.raises(WireError, match="surprise"):
        wire.decode(msgpack.packb(raw))


def test_fields_a_newer_box_drops_take_their_defaults():
    """A message whose `fields` leave out fields with defaults (an older box's shape) is read."""
    raw = msgpack.unpackb(wire.encode(envelope("session", [rf.session()])), raw=False)
    i = raw["fields"].index("weather")
    del raw["fields"][i]
    del raw["records"][0][i + 1]
    (got,) = wire.decode(msgpack.packb(raw))
    assert got.records[0][1].weather == ""


@pytest.mark.parametrize("device,ok", [
    ("pitbox-01", True), ("a.b_c~d%e-f", True), ("ab", False), ("1abc", False),
    ("google-box", False), ("a/../b", False), ("dev+#", False), ("a+b", False), ("GOOGbox", False), ("x" * 256, False),
])
def test_device_ids_follow_the_cloud_iot_rule(device, ok):
    assert wire.valid_device_id(device) is ok

