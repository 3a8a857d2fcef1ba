import msgpack
import pytest

from gateway.outbox import Row
from gateway.records import fields_of, values_of
from gateway.uplink import auth, wire
from gateway.uplink.batching import batch, is_record_body, message
from tests.unit import records_factory as rf


def rows_of(records, start=1):
    return [Row(start + i, r.KIND, r.rig, r.session_id, r.PRIORITY, r.ts_ns,
                msgpack.packb(values_of(type(r))(r)), fields=fields_of(type(r)))
            for i, r in enumerate(records)]


def test_rows_stored_before_version_3_never_share_a_message_with_arrays():
    old = Row(1, "lap", "rig-a", rf.SID, 1, 0, msgpack.packb(rf.lap(1).to_dict()))
    new = rows_of([rf.lap(2)], start=2)[0]
    msgs = batch([old, new], device="dev-1", sent_ns=5, max_records=100)
    assert [[r.seq for r in m.rows] for m in msgs] == [[1], [2]]
    assert [wire.decode(m.payload)[0].version for m in msgs] == [2, 3]
    with pytest.raises(ValueError, match="one shape"):
        message([old, new], device="dev-1", sent_ns=5)


def test_a_stored_array_must_have_one_value_per_field():
    (row,) = rows_of([rf.lap(1)])
    assert is_record_body(row.body, row.fields)
    assert not is_record_body(row.body, row.fields[:-1])
    assert not is_record_body(row.body, None)  # an array where a map is expected
    assert not is_record_body(b"", row.fields) and not is_record_body(b"\xdc\x00", row.fields)


def test_one_message_per_kind_of_every_rig_in_first_row_order():
    rows = rows_of([rf.lap(1), rf.sample(1), rf.lap(2), rf.lap(3, rig="rig-b", sid="rig-b@x#y#1"),
                    rf.sample(2)])
    msgs = batch(rows, device="dev-1", sent_ns=5, max_records=100)
    assert [(m.kind, [r.seq for r in m.rows]) for m in msgs] == [
        ("lap", [1, 3, 4]), ("sample", [2, 5])]
    a, b = wire.decode(msgs[0].payload)
    assert a.device == "dev-1" and (a.rig, a.seqs) == ("rig-a", (1, 3))
    assert [rec.lap_no for _, rec in a.records] == [1, 2]
    assert (b.rig, b.session_id, b.seqs) == ("rig-b", "rig-b@x#y#1", (4,))


def test_messages_respect_the_record_and_byte_limits():
    rows = rows_of([rf.sample(i) for i in range(250)])
    msgs = batch(rows, device="dev-1", sent_ns=5, max_records=100)
    assert [len(m.rows) for m in msgs] == [100, 100, 50]
    small = batch(rows, device="dev-1", sent_ns=5, max_records=1000, max_bytes=4096)
    assert all(len(m.payload) <= 4096 for m in small)
    assert sum(len(m.rows) for m in small) == 250
    assert [r.seq for m in small for r in m.rows] == list(range(1, 251))


def test_jwt_claims_follow_the_cloud_iot_convention():
    c = auth.claims(1_800_000_000.7, "proj", 3600)
    assert c == {"iat": 1_800_000_000, "exp": 1_800_003_600, "aud": "proj"}
    assert auth.client_id("p", "r", "reg", "dev") == "projects/p/locations/r/registries/reg/devices/dev"


def test_no_token_longer_than_a_day_and_no_token_before_the_clock_is_sane():
    import pytest

    from gateway.errors import ClockNotSynced
    with pytest.raises(ValueError):
        auth.claims(1_800_000_000, "p", 24 * 3600 + 1)
    assert not auth.clock_is_sane(86_400)  # a Pi without RTC boots in 1970
    assert auth.clock_is_sane(86_400, synced_flag=True)
    with pytest.raises(ClockNotSynced):
        auth.mint(b"unused", 86_400, "p", 60, synced=lambda: False)
