"""gateway.decode.f1 against real F1 24 packets, the upstream parser's decode, garbage, and
seeded round trips of generated bodies."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decode.f1 import SIZES, decode_packet, encode_packet
from gateway.decode.f1.header import Header
from gateway.decode.f1.packet_01_session import SESSION_TYPES, TRACK_NAMES
from gateway.decode.f1.packet_02_lap_data import LapData, LapDataPacket
from gateway.decode.f1.packet_03_event import EVENT_CODES, EventPacket
from gateway.decode.f1.packet_06_car_telemetry import CarTelemetry, CarTelemetryPacket
from gateway.decode.f1.packet_07_car_status import VISUAL_COMPOUNDS, CarStatus, CarStatusPacket
from gateway.errors import MalformedPacket

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
BINS = SHARED / "f1" / "maciejpedzich-f1-game-packet-parser"
MOCKS = SHARED / "f1" / "z0mt3c-f1-telemetry-client" / "2024.json"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data not present (a user's clone): real-packet tests skipped")

DECODED_IDS = {1, 2, 3, 6, 7}
BAD_LENGTH = {"2024-03-RDFL.bin", "2024-03-SCAR.bin"}  # hand-edited upstream: 44 and 47 bytes


def real_bins() -> list[Path]:
    return sorted(BINS.glob("2024-*.bin")) if BINS.is_dir() else []


def header(packet_id: int, **kw: Any) -> Header:
    base = Header(2024, 24, 1, 17, 1, packet_id, 0x1234_5678_9ABC_DEF0, 12.5, 250, 250, 0, 255)
    return base._replace(**kw)


# -- real packets --------------------------------------------------------------------------

@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("path", real_bins(), ids=lambda p: p.name)
def test_every_real_2024_packet_decodes_or_is_dropped_with_its_reason(path: Path) -> None:
    data = path.read_bytes()
    packet_id = int(path.name[5:7])
    if path.name in BAD_LENGTH:
        with pytest.raises(MalformedPacket) as exc:
            decode_packet(data)
        assert exc.value.reason == "bad_length"
    elif packet_id in DECODED_IDS:
        packet = decode_packet(data)
        assert packet.header.packet_id == packet_id
        assert encode_packet(*packet) == data  # exact round trip, spare union bytes included
    else:
        with pytest.raises(MalformedPacket) as exc:
            decode_packet(data)
        assert exc.value.reason == "not_decoded"


@needs_shared
@pytest.mark.shared
def test_real_packets_decode_to_plausible_values() -> None:
    def body(name: str) -> Any:
        return decode_packet((BINS / name).read_bytes()).body

    session = body("2024-01.bin")
    assert session.track_id in TRACK_NAMES and session.session_type in SESSION_TYPES
    assert 1000 < session.track_length_m < 8000 and -10 < session.air_temp_c < 60
    tel = body("2024-06.bin")
    assert len(tel.cars) == 22
    assert all(0 <= c.speed_kph <= 400 and -1 <= c.gear <= 8 for c in tel.cars)
    assert all(0.0 <= c.throttle <= 1.0 and 0.0 <= c.brake <= 1.0 for c in tel.cars)
    laps = body("2024-02.bin")
    active = [c for c in laps.cars if c.result_status >= 2]
    assert active and all(1 <= c.car_position <= 22 for c in active)
    assert all(c.pit_status in (0, 1, 2) and c.sector in (0, 1, 2) for c in active)
    status = body("2024-07.bin")
    assert all(c.visual_tyre_compound in VISUAL_COMPOUNDS or c.visual_tyre_compound == 0
               for c in status.cars)
    ftlp = body("2024-03-FTLP.bin")
    assert ftlp.code == "FTLP" and 60 < ftlp.details["lap_time_s"] < 200


def mock_lines() -> list[dict[str, Any]]:
    if not MOCKS.is_file():
        return []
    return [json.loads(line) for line in MOCKS.read_text().splitlines() if line.strip()]


CAR_FIELDS = {
    "lapData": ("m_lapData", [("last_lap_time_ms", "m_lastLapTimeInMS"),
                              ("current_lap_time_ms", "m_currentLapTimeInMS"),
                              ("car_position", "m_carPosition"),
                              ("current_lap_num", "m_currentLapNum"),
                              ("lap_distance_m", "m_lapDistance"),
                              ("speed_trap_fastest_speed_kph", "m_speedTrapFastestSpeed")]),
    "carTelemetry": ("m_carTelemetryData", [("speed_kph", "m_speed"), ("gear", "m_gear"),
                                            ("engine_rpm", "m_engineRPM"),
                                            ("throttle", "m_throttle")]),
    "carStatus": ("m_carStatusData", [("fuel_in_tank_kg", "m_fuelInTank"),
                                      ("visual_tyre_compound", "m_visualTyreCompound"),
                                      ("tyres_age_laps", "m_tyresAgeLaps"),
                                      ("max_rpm", "m_maxRPM")]),
}


@needs_shared
@pytest.mark.shared
def test_decode_agrees_with_the_upstream_typescript_parser() -> None:
    checked = 0
    for line in mock_lines():
        data = bytes(line["message"]["data"])
        kind, parsed = line["packetID"], line["parsed"]
        if kind == "session":
            s = decode_packet(data).body
            assert (s.track_id, s.session_type, s.track_length_m, s.total_laps) == (
                parsed["m_trackId"], parsed["m_sessionType"], parsed["m_trackLength"],
                parsed["m_totalLaps"])
            checked += 1
        elif kind in CAR_FIELDS:
            array, pairs = CAR_FIELDS[kind]
            cars = decode_packet(data).body.cars
            for ours, theirs in zip(cars, parsed[array], strict=True):
                for name, m_name in pairs:
                    assert getattr(ours, name) == pytest.approx(theirs[m_name]), name
            checked += 1
        elif kind == "event":
            e = decode_packet(data).body
            assert e.code == parsed["m_eventStringCode"]
            checked += 1
    assert checked >= 20


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("datagram", "reason"), [
    (b"", "short_header"),
    (b"\xe8\x07" + bytes(20), "short_header"),
    (struct.pack("<H", 2019) + bytes(43), "unknown_format"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 15) + bytes(40), "unknown_packet_id"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 6) + bytes(40), "bad_length"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 0) + bytes(1349 - 7), "not_decoded"),
    (struct.pack("<HBBBBB", 2024, 24, 1, 0, 1, 3) + bytes(22) + b"XXXX" + bytes(12),
     "bad_event_code"),
])
def test_undecodable_datagrams_raise_malformed_packet_with_reason(datagram: bytes,
                                                                   reason: str) -> None:
    with pytest.raises(MalformedPacket) as exc:
        decode_packet(datagram)
    assert exc.value.reason == reason


def test_sizes_cover_every_2024_packet_id() -> None:
    assert sorted(pid for fmt, pid in SIZES if fmt == 2024) == list(range(15))


def _must_only_raise_malformed(data: bytes) -> None:
    try:
        decode_packet(data)
    except MalformedPacket:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_garbage_bytes_only_raise_malformed_packet(data: bytes) -> None:
    _must_only_raise_malformed(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2, 3, 6, 7]), st.data())
def test_garbage_bodies_behind_a_valid_header_only_raise_malformed_packet(
        packet_id: int, data: st.DataObject) -> None:
    size = SIZES[(2024, packet_id)]
    body = data.draw(st.binary(min_size=size - 29, max_size=size - 29))
    _must_only_raise_malformed(struct.pack("<HBBBBBQfIIBB", *header(packet_id)) + body)


@needs_shared
@settings(max_examples=200, deadline=None)
@given(st.sampled_from([p for p in real_bins() if p.name not in BAD_LENGTH] or [Path()]),
       st.integers(-60, 60), st.binary(max_size=8))
def test_truncated_or_extended_real_packets_only_raise_malformed_packet(
        path: Path, cut: int, extra: bytes) -> None:
    data = path.read_bytes()
    mutated = data[:cut] if cut < 0 else data + extra[:cut]
    _must_only_raise_malformed(mutated)


# -- seeded round trips of generated bodies ------------------------------------------------

def _f32(rng: random.Random, lo: float, hi: float) -> float:
    """A float that survives float32 packing unchanged."""
    return struct.unpack("<f", struct.pack("<f", rng.uniform(lo, hi)))[0]  # type: ignore[no-any-return]


def _lap(rng: random.Random) -> LapData:
    ms = lambda: rng.randrange(0, 255 * 60_000)
    return LapData(rng.randrange(2**32), rng.randrange(2**32), ms(), ms(), ms(), ms(),
                   _f32(rng, -100, 6000), _f32(rng, -100, 1e5), _f32(rng, -5, 5),
                   *[rng.randrange(256) for _ in range(5)], rng.random() < 0.5,
                   *[rng.randrange(256) for _ in range(7)], rng.randrange(256),
                   rng.random() < 0.5, rng.randrange(65536), rng.randrange(65536),
                   rng.randrange(256), _f32(rng, 0, 360), rng.randrange(256))


def _tel(rng: random.Random) -> CarTelemetry:
    q = lambda n: tuple(rng.randrange(n) for _ in range(4))
    return CarTelemetry(rng.randrange(400), _f32(rng, 0, 1), _f32(rng, -1, 1), _f32(rng, 0, 1),
                        rng.randrange(101), rng.randrange(-1, 9), rng.randrange(15000),
                        rng.random() < 0.5, rng.randrange(101), rng.randrange(65536),
                        q(1200), q(256), q(256), rng.randrange(150),  # type: ignore[arg-type]
                        tuple(_f32(rng, 18, 30) for _ in range(4)), q(12))  # type: ignore[arg-type]


def _status(rng: random.Random) -> CarStatus:
    return CarStatus(*[rng.randrange(256) for _ in range(5)], _f32(rng, 0, 110),
                     _f32(rng, 0, 110), _f32(rng, -5, 30), rng.randrange(65536),
                     rng.randrange(65536), rng.randrange(256), rng.randrange(2),
                     rng.randrange(65536), rng.choice([16, 17, 18, 7, 8]),
                     rng.choice(list(VISUAL_COMPOUNDS)), rng.randrange(256), rng.randrange(-1, 4),
                     _f32(rng, 0, 6e5), _f32(rng, 0, 1.2e5), _f32(rng, 0, 4e6), rng.randrange(4),
                     _f32(rng, 0, 1e6), _f32(rng, 0, 1e6), _f32(rng, 0, 1e6), rng.randrange(2))


@pytest.mark.parametrize("seed", range(20))
def test_generated_bodies_round_trip_through_encode_and_decode(seed: int) -> None:
    rng = random.Random(seed)
    bodies: list[tuple[int, Any]] = [
        (2, LapDataPacket(tuple(_lap(rng) for _ in range(22)), rng.randrange(256), 255)),
        (6, CarTelemetryPacket(tuple(_tel(rng) for _ in range(22)), 255, 0,
                               rng.randrange(-1, 9))),
        (7, CarStatusPacket(tuple(_status(rng) for _ in range(22)))),
        (3, EventPacket("FTLP", {"vehicle_idx": rng.randrange(22),
                                 "lap_time_s": _f32(rng, 60, 120)}, bytes(7))),
        (3, EventPacket("PENA", dict(zip(("penalty_type", "infringement_type", "vehicle_idx",
                                          "other_vehicle_idx", "time_s", "lap_num",
                                          "places_gained"),
                                         [rng.randrange(256) for _ in range(7)])), bytes(5))),
    ]
    for packet_id, body in bodies:
        h = header(packet_id, frame_id=rng.randrange(2**32))
        datagram = encode_packet(h, body)
        assert len(datagram) == SIZES[(2024, packet_id)]
        assert decode_packet(datagram) == (h, body)


@pytest.mark.parametrize("code", sorted(EVENT_CODES))
def test_every_event_code_decodes_and_round_trips(code: str) -> None:
    union = random.Random(code).randbytes(12)
    datagram = struct.pack("<HBBBBBQfIIBB", *header(3)) + code.encode() + union
    packet = decode_packet(datagram)
    assert packet.body.code == code
    assert all(isinstance(v, int | float) for v in packet.body.details.values())
    assert encode_packet(*packet) == datagram
