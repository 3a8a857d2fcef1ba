"""Every event code of every packet format becomes an Event record, or is merged as
f1_events.MERGED_EVENT_CODES documents; button events are rate-limited. Pure: packets go
through the real encoder and decoder, as in test_normalize_f1."""

from __future__ import annotations

import random
import re
import struct

import pytest

from gateway.decode.f1 import FORMATS
from gateway.decode.f1.packet_03_event import EVENT_CODES, MEMBERS
from gateway.normalize.f1 import NO_CAR
from gateway.normalize.f1_events import (
    BUTN_MIN_GAP_S,
    CAR_KEYS,
    EVENT_NAMES,
    MERGED_EVENT_CODES,
    ButtonLimiter,
)
from gateway.records import Event
from tests.unit.test_normalize_f1 import Rig

EVERY_CODE = [(fmt, code) for fmt in FORMATS for code in sorted(MEMBERS[fmt])]


def details_for(fmt: int, code: str) -> dict[str, float]:
    """Plausible values for the code's union member (car indices inside the grid)."""
    rng = random.Random(f"{fmt}{code}")
    fmt_text, keys = MEMBERS[fmt][code]
    kinds = "".join(kind * int(n or 1) for n, kind in re.findall(r"(\d*)(\w)", fmt_text))
    out: dict[str, float] = {}
    for key, kind in zip(keys, kinds, strict=True):
        if kind == "f":
            out[key] = float(struct.unpack("<f", struct.pack("<f", rng.uniform(1, 100)))[0])
        else:
            out[key] = rng.randrange(1, 20)
    return out


def test_every_code_of_every_format_has_a_name_and_merges_are_documented() -> None:
    assert set(EVENT_NAMES) == EVENT_CODES
    assert set(MERGED_EVENT_CODES) <= EVENT_CODES
    assert len(set(EVENT_NAMES.values())) == len(EVENT_NAMES)  # no two codes share a name


@pytest.mark.parametrize(("fmt", "code"), EVERY_CODE, ids=lambda v: str(v))
def test_every_event_code_of_every_format_becomes_an_event_record(fmt: int,
                                                                   code: str) -> None:
    rig = Rig(fmt=fmt)
    rig.session(0.0)
    details = details_for(fmt, code)
    out = rig.event(5.0, code, **details)
    if code == "SSTA":  # documented: merged into the one session_start
        assert out == [] and rig.norm.stats["session_start_merged"] == 1
        assert [e.code for e in rig.of(Event)] == ["session_start"]
        return
    (event,) = out
    assert isinstance(event, Event)
    assert (event.code, event.game_code, event.session_time_s) == (EVENT_NAMES[code], code, 5.0)
    car_key = next((k for k in CAR_KEYS if k in details), None)
    assert event.car_idx == (details[car_key] if car_key else NO_CAR)
    expected = {k: round(v, 3) if isinstance(v, float) else v
                for k, v in details.items() if k != "vehicle_idx"}
    assert expected.items() <= event.detail.items()  # FLBK adds the rewound span
    if code in MERGED_EVENT_CODES:  # the first one goes out; the merging is tested below
        assert rig.event(5.05, code, **details) == []


def test_button_events_are_rate_limited_and_merged_presses_are_said() -> None:
    rig = Rig()
    rig.session(0.0)
    sent = []
    for i, status in enumerate([1, 0, 1, 0, 4, 4, 4, 0]):  # every 50 ms
        sent += [e.detail for e in rig.event(1.0 + i * 0.05, "BUTN", button_status=status)
                 if isinstance(e, Event)]
    sent += [e.detail for e in rig.event(2.0, "BUTN", button_status=2)
             if isinstance(e, Event)]
    assert sent == [{"button_status": 1},
                    {"button_status": 4, "merged": 3, "merged_status_bits": 1},
                    {"button_status": 2, "merged": 3, "merged_status_bits": 4}]
    assert rig.norm.stats["event_merged_butn"] == 6


def test_the_button_limiter_lets_a_flashback_through_and_never_more_than_its_rate() -> None:
    limiter = ButtonLimiter()
    t, passed = 0.0, []
    for i in range(1000):  # a status change every frame at 60 Hz
        t = i / 60
        if limiter.admit(t, i % 2 + 1) is not None:
            passed.append(t)
    assert len(passed) <= 1000 / 60 / BUTN_MIN_GAP_S + 1
    assert limiter.admit(t - 5.0, 7) is not None  # the clock went back: a new start
