import msgpack
import pytest

from gateway.errors import WireError
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
    assert wire.decode(wire.encode(env)) == env


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
    (body(rig="rig-b"), "another rig or session"),
])
def test_bad_messages_raise_a_clear_wire_error(payload, message):
    with pytest.raises(WireError, match=message):
        wire.decode(payload)


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
