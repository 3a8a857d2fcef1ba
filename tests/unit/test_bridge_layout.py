"""The Teamtactics layout: which documents an envelope becomes, and how a batch coalesces."""

from __future__ import annotations

import pytest

from cloud.bridge.layout import LayoutError, coalesce, docs_for
from cloud.store.base import DocWrite
from gateway.records import Record
from gateway.uplink.wire import Envelope, decode, encode
from tests.unit import records_factory as rf

SID = rf.SID
DEV = "box-0001"


def envelope(*records: tuple[int, Record], sid: str = SID) -> Envelope:
    kind = records[0][1].KIND
    return Envelope(DEV, "rig-a", sid, kind, 123, tuple(records))


def other_car_state() -> Record:
    from dataclasses import replace
    return replace(rf.state(3), car_idx=7, own_car=False)


CASES = [
    # (record, collection, doc_id, merge)
    (rf.session(), SID, "info", True),
    (rf.lap(1), SID, "1", False),
    (rf.lap(12), SID, "12", False),
    (rf.lap(4, own_car=False, car_idx=5), SID + "~field", "05-4", False),
    (rf.state(2), SID, "state", True),
    (other_car_state(), SID + "~field", "07-state", True),
    (rf.event("pit_entry"), SID + "~events", f"{DEV}-41", False),
    (rf.sample(3), SID + "~samples", f"{DEV}-41", False),
]


@pytest.mark.parametrize(("record", "collection", "doc_id", "merge"), CASES,
                         ids=[f"{c[0].KIND}-{c[2]}" for c in CASES])
def test_each_record_kind_lands_in_its_teamtactics_document(
        record: Record, collection: str, doc_id: str, merge: bool) -> None:
    [write] = docs_for(envelope((41, record)))
    assert (write.collection, write.doc_id, write.merge) == (collection, doc_id, merge)
    assert {k: write.data[k] for k in ("device", "seq", "rig", "ts_ns")} == {
        "device": DEV, "seq": 41, "rig": "rig-a", "ts_ns": record.ts_ns}


def test_info_doc_holds_what_teamtactics_reads() -> None:
    [write] = docs_for(envelope((1, rf.session())))
    extras = {k: getattr(rf.session(), k) for k in ("weather", "formula", "duration_s",
                                                     "track_temp_c", "air_temp_c", "historical")}
    assert write.data == {"device": DEV, "seq": 1, "rig": "rig-a", "ts_ns": 1,
                          "track": "silverstone", "car": "F1", "game": "f1-2024",
                          "session_type": "race", "team": "", "drivers": ["rig-a"],
                          "max_laps": 5, "max_time_s": 0, "client": "pitbox", **extras}


def test_state_doc_holds_stint_and_pit_times() -> None:
    [write] = docs_for(envelope((9, rf.state(2))))
    assert write.data == {"device": DEV, "seq": 9, "rig": "rig-a", "ts_ns": 7, "car_idx": 0,
                          "stint": 2, "stint_laps": 0, "in_pit": False, "pit_entry_s": 270.0,
                          "pit_exit_s": 295.0, "pit_stop_s": 280.0, "pit_go_s": 283.0}


def test_state_doc_carries_the_games_extras_without_letting_them_shadow_the_stint() -> None:
    from dataclasses import replace
    rec = replace(rf.state(2), detail={"driver": "Ann", "tow_s": 31.5, "stint": 99})
    [write] = docs_for(envelope((9, rec)))
    assert (write.data["driver"], write.data["tow_s"], write.data["stint"]) == ("Ann", 31.5, 2)


def test_lap_doc_holds_the_lap_fields_but_not_the_session_id() -> None:
    [write] = docs_for(envelope((5, rf.lap(2))))
    assert write.data["lap_time_ms"] == 90_002
    assert write.data["sector_ms"] == [30_000, 30_000, 30_002]
    assert "session_id" not in write.data


def test_the_same_envelope_twice_gives_identical_writes() -> None:
    env = envelope((1, rf.lap(1)), (2, rf.lap(2)), (3, rf.lap(3)))
    (again,) = decode(encode(env))  # as a redelivered message arrives
    assert docs_for(env) == docs_for(again)
    assert [w.doc_id for w in docs_for(env)] == ["1", "2", "3"]


def test_coalescing_keeps_the_highest_seq_for_state() -> None:
    newer, older = (20, rf.state(3)), (10, rf.state(2))
    writes = docs_for(envelope(newer)) + docs_for(envelope(older))
    [state] = coalesce(writes)
    assert (state.doc_id, state.merge, state.data["seq"], state.data["stint"]) == (
        "state", True, 20, 3)


def test_coalescing_merges_in_seq_order_and_a_set_replaces() -> None:
    writes = [DocWrite("c", "d", {"seq": 3, "b": 3}, merge=True),
              DocWrite("c", "d", {"seq": 1, "a": 1, "b": 1}, merge=True),
              DocWrite("c", "e", {"seq": 1, "x": 1}),
              DocWrite("c", "e", {"seq": 2, "y": 2})]
    assert coalesce(writes) == [DocWrite("c", "d", {"seq": 3, "a": 1, "b": 3}, merge=True),
                                DocWrite("c", "e", {"seq": 2, "y": 2})]


def test_coalescing_leaves_distinct_documents_alone() -> None:
    writes = docs_for(envelope((1, rf.lap(1)), (2, rf.lap(2))))
    assert coalesce(writes + writes) == writes


@pytest.mark.parametrize("sid", ["team/a@x#1#2", ".", "..", "__x__", "x" * 1500])
def test_a_session_id_firestore_cannot_hold_is_refused(sid: str) -> None:
    from dataclasses import replace
    env = envelope((1, replace(rf.lap(1), session_id=sid)), sid=sid)
    with pytest.raises(LayoutError):
        docs_for(env)


@pytest.mark.parametrize(("topic", "device"), [
    ("/devices/box-1/events/lap", "box-1"),
    ("/devices/box-1/events", None),
    ("/devices/box-1/state", None),
    ("/devices//events/lap", None),
    ("/other/box-1/events/lap", None),
    ("/devices/box-1/events/lap/x", None),
])
def test_the_device_is_read_from_an_events_topic(topic: str, device: str | None) -> None:
    from cloud.bridge.layout import device_of
    assert device_of("/devices", topic) == device


def test_a_dead_letter_is_the_same_doc_for_the_same_message() -> None:
    from cloud.bridge.layout import dead_letter
    a = dead_letter("/devices/b-1/events/lap", b"\x00" * 100, "bad", mid=1, received_ns=5)
    b = dead_letter("/devices/b-1/events/lap", b"\x00" * 100, "bad", mid=9, received_ns=6)
    c = dead_letter("/devices/b-1/events/lap", b"\x01", "bad", mid=1, received_ns=5)
    assert a.collection == "deadletters" and a.doc_id == b.doc_id != c.doc_id
    assert a.doc_id.startswith("devices_b-1_events_lap-") and "/" not in a.doc_id
    assert (a.data["payload_bytes"], len(a.data["payload_hex"])) == (100, 128)


@pytest.mark.parametrize(("topic", "parsed"), [
    ("/devices/box-1/events/lap", ("box-1", "events")),
    ("/devices/box-1/state", ("box-1", "state")),
    ("/devices//state", None),
    ("/devices/box-1/state/x", None),
    ("/devices/box-1/config", None),
    ("/devicesX/box-1/state", None),
])
def test_events_and_state_topics_name_their_device(topic: str,
                                                   parsed: tuple[str, str] | None) -> None:
    from cloud.bridge.layout import parse_topic
    assert parse_topic("/devices", topic) == parsed


def test_merged_documents_are_guarded_and_set_documents_are_not() -> None:
    writes = docs_for(envelope((1, rf.state(2)))) + docs_for(envelope((2, rf.lap(1))))
    assert [(w.doc_id, w.merge, w.if_newer) for w in writes] == [("state", True, True),
                                                                  ("1", False, False)]
