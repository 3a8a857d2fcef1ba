"""A datagram that decodes but that the normalizer cannot take (a NaN where EA sends a float)
is counted and dropped; the rig's other packets, and every lap, still come through."""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

import pytest

from gateway.decode.f1 import decode_packet, encode_packet
from gateway.outbox import Outbox
from gateway.pipeline import Pipeline
from gateway.sim.f1 import simulate_rigs

CAR_STATUS = 7


def poisoned(datagram: bytes) -> bytes:
    """The same Car Status packet with NaN stored ERS energy for every car."""
    header, body = decode_packet(datagram)
    cars = tuple(c._replace(ers_store_energy_j=math.nan) for c in body.cars)
    return encode_packet(header, body._replace(cars=cars))


def run(tmp_path: Path, name: str, poison: bool) -> tuple[Pipeline, Counter[str]]:
    box = Outbox(tmp_path / f"{name}.sqlite")
    pipe = Pipeline(box)
    for ts, src, datagram in simulate_rigs(1, 2025, laps=2, hz=20, lap_time_s=20, num_cars=4):
        if poison and datagram[6] == CAR_STATUS:  # header byte 6: packet id
            datagram = poisoned(datagram)
        pipe.on_datagram(datagram, src, ts, ts)
    pipe.commit()
    kinds = Counter(row.kind for row in box.claim(1_000_000))
    box.close()
    return pipe, kinds


def test_a_nan_the_normalizer_chokes_on_is_counted_dropped_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, clean = run(tmp_path, "clean", poison=False)
    with caplog.at_level(logging.ERROR, logger="pitbox.pipeline"):
        pipe, kinds = run(tmp_path, "nan", poison=True)
    assert pipe.dropped["normalize_error"] > 10
    assert kinds["lap"] == clean["lap"] > 0 and kinds["event"] == clean["event"]
    assert kinds["sample"] < clean["sample"]  # the samples of those packets are what is lost
    errors = [r for r in caplog.records if r.name == "pitbox.pipeline"]
    assert len(errors) == 1 and errors[0].exc_info is not None  # a minute's worth: one line
    assert "F1 packet 6" in errors[0].getMessage()  # the sample is built on Car Telemetry
