"""The batcher splices stored record bytes into the envelope; it must equal wire packing exactly."""

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.outbox import Row
from gateway.records import RECORD_TYPES, fields_of, values_of
from gateway.uplink import wire
from gateway.uplink.batching import batch
from tests.unit import records_factory as rf


def test_spliced_envelope_is_byte_identical_to_encoding_the_records():
    recs = [rf.sample(i) for i in range(5)]
    cls = RECORD_TYPES["sample"]
    rows = [Row(10 + i, "sample", r.rig, r.session_id, 5, r.ts_ns,
                msgpack.packb(values_of(cls)(r)), fields=fields_of(cls))
            for i, r in enumerate(recs)]
    (msg,) = batch(rows, device="dev-1", sent_ns=42, max_records=100)
    env = wire.Envelope("dev-1", recs[0].rig, recs[0].session_id, "sample", 42,
                        tuple((10 + i, r) for i, r in enumerate(recs)))
    assert msg.payload == wire.encode(env)
    assert wire.decode(msg.payload) == [env]


def test_rows_stored_as_maps_go_out_as_version_2_byte_identical():
    recs = [rf.sample(i) for i in range(5)]
    rows = [Row(10 + i, "sample", r.rig, r.session_id, 5, r.ts_ns, msgpack.packb(r.to_dict()))
            for i, r in enumerate(recs)]
    (msg,) = batch(rows, device="dev-1", sent_ns=42, max_records=100)
    want = wire.pack_v2("dev-1", "sample", 42,
                        [{"seq": 10 + i, **r.to_dict()} for i, r in enumerate(recs)])
    assert msg.payload == want
    (env,) = wire.decode(msg.payload)
    assert env.seqs == (10, 11, 12, 13, 14) and env.version == 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=5).filter(lambda k: k != "seq"),
                                st.integers(-2**63, 2**64 - 1), max_size=40),
                min_size=1, max_size=5))
def test_maps_of_any_header_size_splice_correctly(bodies):  # fixmap and map16 headers
    rows = [Row(i + 1, "sample", "r", "s", 5, 0, msgpack.packb(b)) for i, b in enumerate(bodies)]
    (msg,) = batch(rows, device="d", sent_ns=1, max_records=100, max_bytes=2**30)
    got = msgpack.unpackb(msg.payload, raw=False, strict_map_key=False)["records"]
    assert got == [{"seq": i + 1, **b} for i, b in enumerate(bodies)]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.lists(
    st.lists(st.integers(-2**63, 2**64 - 1), min_size=n, max_size=n), min_size=1, max_size=5)))
def test_arrays_of_any_header_size_splice_correctly(bodies):  # fixarray and array16 headers
    fields = tuple(f"f{i}" for i in range(len(bodies[0])))
    rows = [Row(i + 1, "sample", "r", "s", 5, 0, msgpack.packb(b), fields=fields)
            for i, b in enumerate(bodies)]
    (msg,) = batch(rows, device="d", sent_ns=1, max_records=100, max_bytes=2**30)
    raw = msgpack.unpackb(msg.payload, raw=False)
    assert raw["fields"] == list(fields)
    assert raw["records"] == [[i + 1, *b] for i, b in enumerate(bodies)]
