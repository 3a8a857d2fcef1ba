"""Shim frames: sealed, split from a stream, refused when forged, replayed or garbage."""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decode.irsdk.frames import (
    MAX_FRAME_BYTES,
    TAG_BYTES,
    FrameRefused,
    FrameSplitter,
    ReplayGuard,
    open_frame,
    seal,
)
from gateway.errors import MalformedPacket

KEY = b"k" * 24


def test_a_sealed_frame_round_trips_through_a_stream_cut_anywhere():
    rng = random.Random(4)
    frames = [seal(KEY, "pc-1", 1000, seq, "tel", {"vars": {"LapCompleted": seq}})
              for seq in range(1, 40)]
    stream = b"".join(frames)
    splitter = FrameSplitter()
    got = []
    i = 0
    while i < len(stream):
        n = rng.randint(1, 50)
        got += splitter.feed(stream[i:i + n])
        i += n
    opened = [open_frame(KEY, raw) for raw in got]
    assert [f.seq for f in opened] == list(range(1, 40))
    assert opened[6].data == {"vars": {"LapCompleted": 7}} and opened[6].shim == "pc-1"


def test_a_frame_under_another_key_is_refused_as_bad_hmac():
    (raw,) = FrameSplitter().feed(seal(b"x" * 24, "pc-1", 1, 1, "tel", {"vars": {}}))
    with pytest.raises(FrameRefused) as exc:
        open_frame(KEY, raw)
    assert exc.value.reason == "bad_hmac"


def test_a_tampered_body_is_refused_as_bad_hmac():
    (raw,) = FrameSplitter().feed(seal(KEY, "pc-1", 1, 1, "tel", {"vars": {"FuelLevel": 10}}))
    forged = raw[:TAG_BYTES] + raw[TAG_BYTES:].replace(b"pc-1", b"pc-2")
    assert forged != raw
    with pytest.raises(FrameRefused, match="bad_hmac"):
        open_frame(KEY, forged)


def test_replayed_and_older_frames_are_refused_and_a_restarted_shim_is_accepted():
    guard = ReplayGuard()
    frames = [open_frame(KEY, FrameSplitter().feed(seal(KEY, "pc", boot, seq, "tel",
                                                        {"vars": {}}))[0])
              for boot, seq in ((5, 1), (5, 2), (5, 2), (5, 1), (9, 1), (5, 3))]
    outcome = []
    for f in frames:
        try:
            guard.accept(f)
            outcome.append("ok")
        except FrameRefused as exc:
            outcome.append(exc.reason)
    assert outcome == ["ok", "ok", "replayed", "replayed", "ok", "replayed"]


def test_an_impossible_length_is_refused_before_buffering_it():
    with pytest.raises(FrameRefused) as exc:
        FrameSplitter().feed((MAX_FRAME_BYTES + 1).to_bytes(4, "big") + b"x" * 10)
    assert exc.value.reason == "oversize"
    with pytest.raises(FrameRefused, match="undersize"):
        FrameSplitter().feed((3).to_bytes(4, "big") + b"abc")


def test_an_authentic_frame_with_a_bad_body_is_malformed_not_a_crash():
    import hashlib
    import hmac
    for body in (b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"v": 1, "shim": "", "boot": 1,
                                                                "seq": 1, "kind": "tel",
                                                                "data": {}}),
                 msgpack.packb({"v": 2}), msgpack.packb({"v": 1, "shim": "a", "boot": 1,
                                                         "seq": 1, "kind": "zzz", "data": {}})):
        raw = hmac.new(KEY, body, hashlib.sha256).digest() + body
        with pytest.raises(MalformedPacket) as exc:
            open_frame(KEY, raw)
        assert exc.value.reason in {"not_msgpack", "bad_version", "bad_body"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_streams_only_ever_raise_malformed_packet(data: bytes):
    splitter = FrameSplitter()
    try:
        for raw in splitter.feed(data):
            open_frame(KEY, raw)
    except MalformedPacket:
        pass
