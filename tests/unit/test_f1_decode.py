"""gateway.decode.f1 for every (format, packet id): sizes, dispatch on packet_format, errors,
garbage (Hypothesis), and seeded round trips of bodies generated from the layouts."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decode.f1 import (
    CODECS,
    FORMATS,
    LAYOUTS,
    NUM_CARS,
    SIZES,
    decode_packet,
    encode_packet,
)
from gateway.decode.f1.describe import datagrams_from_json_lines
from gateway.decode.f1.header import HEADER, Header
from gateway.decode.f1.layout import Layout
from gateway.decode.f1.packet_03_event import MEMBERS, EventPacket
from gateway.decode.f1.packet_07_car_status import CarStatus, CarStatusPacket
from gateway.errors import MalformedPacket

BINS = Path(__file__).resolve().parents[3] / "shared" / "data" / "f1" / \
    "maciejpedzich-f1-game-packet-parser"
MOCKS = BINS.parent / "z0mt3c-f1-telemetry-client"
BAD_LENGTH = {"2024-03-RDFL.bin", "2024-03-SCAR.bin"}  # hand-edited upstream: 44 and 47 bytes
EXPECTED_IDS = {2023: 14, 2024: 15, 2025: 16, 2026: 17}  # ids 0..n-1 per format
ALL_KEYS = sorted(SIZES)


def header(fmt: int, packet_id: int, **kw: Any) -> Header:
    base = Header(fmt, 25, 1, 17, 1, packet_id, 0x1234_5678_9ABC_DEF0, 12.5, 250, 250, 0, 255)
    return base._replace(**kw)


# -- sizes and dispatch ----------------------------------------------------------------------

def test_every_packet_id_of_every_format_has_a_size_and_a_codec() -> None:
    for fmt, count in EXPECTED_IDS.items():
        assert sorted(pid for f, pid in SIZES if f == fmt) == list(range(count))
    assert set(CODECS) == set(SIZES)


@pytest.mark.parametrize("key", [k for k in ALL_KEYS if k[1] != 3], ids=str)
def test_each_layout_adds_up_to_eas_documented_size(key: tuple[int, int]) -> None:
    assert HEADER.size + LAYOUTS[key].size == SIZES[key]


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_car_arrays_have_the_formats_car_count(fmt: int) -> None:
    zero = bytes(SIZES[(fmt, 2)] - HEADER.size)
    packet = decode_packet(HEADER.pack(*header(fmt, 2)) + zero)
    assert len(packet.body.cars) == NUM_CARS[fmt]  # 24 in 2026


def test_the_layout_follows_packet_format_not_game_year() -> None:
    body = encode_packet(header(2023, 2), random_record(random.Random(5), LAYOUTS[(2023, 2)])
                         )[HEADER.size:]
    as_2023 = decode_packet(HEADER.pack(*header(2023, 2, game_year=25)) + body)
    as_2023_old_game = decode_packet(HEADER.pack(*header(2023, 2, game_year=0)) + body)
    assert as_2023.body == as_2023_old_game.body
    with pytest.raises(MalformedPacket) as exc:  # the same bytes claiming 2024 are too short
        decode_packet(HEADER.pack(*header(2024, 2, game_year=23)) + body)
    assert exc.value.reason == "bad_length"


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("datagram", "reason"), [
    (b"", "short_header"),
    (b"\xe8\x07" + bytes(20), "short_header"),
    (struct.pack("<H", 2019) + bytes(43), "unknown_format"),
    (struct.pack("<H", 2022) + bytes(43), "unknown_format"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 15) + bytes(1124), "unknown_packet_id"),
    (struct.pack("<HBBBBB", 2023, 23, 1, 0, 1, 14) + bytes(94), "unknown_packet_id"),
    (struct.pack("<HBBBBB", 2025, 25, 1, 0, 1, 16) + bytes(262), "unknown_packet_id"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 6) + bytes(40), "bad_length"),
    (struct.pack("<HBBBBB", 2026, 25, 1, 0, 1, 6) + bytes(1352 - 7), "bad_length"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 3) + bytes(22) + b"XXXX" + bytes(12),
     "bad_event_code"),
    (struct.pack("<HBBBBB", 2023, 23, 1, 0, 1, 3) + bytes(22) + b"SCAR" + bytes(12),
     "bad_event_code"),  # safety car events only exist from format 2024 on
])
def test_undecodable_datagrams_raise_malformed_packet_with_reason(datagram: bytes,
                                                                   reason: str) -> None:
    with pytest.raises(MalformedPacket) as exc:
        decode_packet(datagram)
    assert exc.value.reason == reason


def _must_only_raise_malformed(data: bytes) -> None:
    try:
        decode_packet(data)
    except MalformedPacket:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_garbage_bytes_only_raise_malformed_packet(data: bytes) -> None:
    _must_only_raise_malformed(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL_KEYS), st.data())
def test_garbage_bodies_behind_a_valid_header_decode_or_raise_malformed_packet(
        key: tuple[int, int], data: st.DataObject) -> None:
    size = SIZES[key] - HEADER.size
    body = data.draw(st.binary(min_size=size, max_size=size))
    datagram = HEADER.pack(*header(*key)) + body
    try:
        packet = decode_packet(datagram)
    except MalformedPacket as exc:
        assert key[1] == 3 and exc.reason == "bad_event_code"
    else:
        assert packet.header.packet_id == key[1]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_KEYS), st.integers(-60, 60), st.binary(max_size=60))
def test_truncated_or_extended_packets_raise_malformed_packet(
        key: tuple[int, int], cut: int, extra: bytes) -> None:
    datagram = encode_packet(header(*key), _zero_body(key))
    mutated = datagram[:cut] if cut < 0 else datagram + extra[:cut]
    if len(mutated) == len(datagram):
        return
    with pytest.raises(MalformedPacket):
        decode_packet(mutated)


def real_bins() -> list[Path]:
    return sorted(p for p in BINS.glob("*.bin") if p.name not in BAD_LENGTH) \
        if BINS.is_dir() else []


def real_datagrams() -> list[bytes]:
    """Every real datagram of ../shared/data/f1 of the right length: the maciejpedzich .bin
    files (formats 2023, 2024) and the z0mt3c JSON lines (2023, 2024 and 2025: the only real
    format-2025 packets there are)."""
    out = [p.read_bytes() for p in real_bins()]
    for path in sorted(MOCKS.glob("*.json")) if MOCKS.is_dir() else []:
        out += datagrams_from_json_lines(path.read_text())
    return out


REAL = real_datagrams()


def test_the_real_packets_include_every_format_the_captures_hold() -> None:
    if not BINS.parent.is_dir():
        pytest.skip("../shared/data/f1 not present")
    formats = {struct.unpack_from("<H", d)[0] for d in REAL}
    assert formats == {2023, 2024, 2025} and len(REAL) == len(real_bins()) + 71


@pytest.mark.shared
@pytest.mark.skipif(not REAL, reason="../shared/data/f1 not present: real packets skipped")
@settings(max_examples=400, deadline=None)
@given(st.sampled_from(REAL or [b""]), st.integers(-60, 60), st.binary(max_size=60))
def test_truncated_or_extended_real_packets_only_raise_malformed_packet(
        data: bytes, cut: int, extra: bytes) -> None:
    mutated = data[:cut] if cut < 0 else data + extra[:cut]
    if len(mutated) == len(data):
        decode_packet(mutated)  # exact size: a valid decode
        return
    with pytest.raises(MalformedPacket):
        decode_packet(mutated)


# -- seeded round trips of generated bodies ------------------------------------------------

def _f32(rng: random.Random) -> float:
    """A float that survives float32 packing unchanged."""
    value: float = struct.unpack("<f", struct.pack("<f", rng.uniform(-1e4, 1e4)))[0]
    return value


_INTS = {"B": (0, 255), "b": (-128, 127), "H": (0, 65535), "h": (-32768, 32767),
         "I": (0, 2**32 - 1), "i": (-2**31, 2**31 - 1), "Q": (0, 2**64 - 1)}


def _scalar(rng: random.Random, code: str) -> Any:
    if code == "f":
        return _f32(rng)
    if code == "d":
        return rng.uniform(-1e6, 1e6)
    return rng.randint(*_INTS[code])


def random_record(rng: random.Random, layout: Layout) -> Any:
    """A value of layout.cls with every wire field random (in range) and the rest default."""
    values = dict(layout.cls._field_defaults)
    for f in layout.fields:
        if f.kind == "scalar":
            values[f.name] = _scalar(rng, f.fmt)
        elif f.kind == "bool":
            values[f.name] = rng.random() < 0.5
        elif f.kind == "ms":
            values[f.name] = rng.randrange(0, 255 * 60_000)
        elif f.kind == "milli":
            values[f.name] = rng.randint(-32768, 32767) / 1000
        elif f.kind == "str":
            values[f.name] = "".join(rng.choice("abcXYZ _-é") for _ in range(rng.randrange(12)))
        elif f.kind == "tuple":
            values[f.name] = tuple(_scalar(rng, c) for c in f.fmt)
        elif f.kind == "matrix":
            cells = [_scalar(rng, c) for c in f.fmt]
            values[f.name] = tuple(tuple(cells[i:i + f.count])
                                   for i in range(0, len(cells), f.count))
        else:
            assert f.sub is not None
            values[f.name] = random_record(rng, f.sub) if not f.count else \
                tuple(random_record(rng, f.sub) for _ in range(f.count))
    return layout.cls(**values)


def _zero_body(key: tuple[int, int]) -> Any:
    return EventPacket("SSTA", {}) if key[1] == 3 else LAYOUTS[key].zero


@pytest.mark.parametrize("key", [k for k in ALL_KEYS if k[1] != 3], ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_generated_bodies_round_trip_through_encode_and_decode(key: tuple[int, int],
                                                               seed: int) -> None:
    rng = random.Random(f"{key}/{seed}")
    body = random_record(rng, LAYOUTS[key])
    h = header(*key, frame_id=rng.randrange(2**32))
    datagram = encode_packet(h, body)
    assert len(datagram) == SIZES[key]
    assert decode_packet(datagram) == (h, body)
    assert encode_packet(*decode_packet(datagram)) == datagram


@pytest.mark.parametrize(("fmt", "code"), [(f, c) for f in FORMATS for c in sorted(MEMBERS[f])])
def test_every_event_code_of_every_format_decodes_and_round_trips(fmt: int, code: str) -> None:
    union = random.Random(f"{fmt}{code}").randbytes(12)
    datagram = HEADER.pack(*header(fmt, 3)) + code.encode() + union
    packet = decode_packet(datagram)
    assert packet.body.code == code
    assert list(packet.body.details) == list(MEMBERS[fmt][code][1])
    assert encode_packet(*packet) == datagram


def test_event_members_follow_the_format() -> None:
    def details(fmt: int, code: str) -> dict[str, Any]:
        union = struct.pack("<Bf", 7, 2.5).ljust(12, b"\0")
        return dict(decode_packet(HEADER.pack(*header(fmt, 3)) + code.encode() + union)
                    .body.details)

    assert details(2024, "SGSV") == {"vehicle_idx": 7}
    assert details(2025, "SGSV") == {"vehicle_idx": 7, "stop_time_s": 2.5}
    assert "severity" in details(2026, "COLL") and "severity" not in details(2025, "COLL")


def test_short_car_tuples_are_padded_with_empty_slots() -> None:
    empty = CarStatus._make([0] * len(CarStatus._fields))
    mine = empty._replace(fuel_in_tank_kg=12.5, fuel_capacity_kg=110.0)
    for fmt in FORMATS:
        packet = decode_packet(encode_packet(header(fmt, 7), CarStatusPacket((mine,))))
        assert packet.body.cars[0] == mine and len(packet.body.cars) == NUM_CARS[fmt]
        assert set(packet.body.cars[1:]) == {empty}


def test_2026_g_forces_are_thousandths_of_a_g_on_the_wire() -> None:
    body = LAYOUTS[(2026, 0)].zero
    car = body.cars[0]._replace(g_force_lateral=-1.25, g_force_vertical=3.5)
    datagram = encode_packet(header(2026, 0), body._replace(cars=(car,)))
    lateral, _, vertical = struct.unpack_from("<3h", datagram, HEADER.size + 36)
    assert (lateral, vertical) == (-1250, 3500)
    assert decode_packet(datagram).body.cars[0].g_force_lateral == -1.25
