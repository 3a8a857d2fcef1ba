"""Our layouts against an independent one: the PyPI `f1-packets` package (ctypes structures
generated from EA's spec), which decodes one packet format per release. For every packet id,
and every event code's union member, of formats 2025 and 2026, the same bytes must give the
same values in the same wire order: that checks every field's offset and type, including
packets no public capture has (2025: 8, 9, 14, 15; 2026: all of them).

2025: the release pinned in pyproject's `dev`/`bench` extras (module `f1.packets`).
2026: release 2026.1.1, whose module has the same name, so `make test` installs it into a
directory of its own, `.venv/f1-packets-2026`, and a session fixture loads its `packets.py`
under another name. The tests never download anything; without that directory (pytest run
without make) the 2026 part skips and says so.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import random
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.decode.f1 import LAYOUTS, encode_packet
from gateway.decode.f1.header import HEADER, Header
from gateway.decode.f1.packet_03_event import MEMBERS
from tests.unit.test_f1_decode import random_record

F1_PACKETS_2026 = "2026.1.1"
F1_PACKETS_2026_DIR = Path(sys.prefix) / "f1-packets-2026"
"""Where the Makefile's f1-packets-2026 target (a prerequisite of `make test`) puts it
(`pip install --target`; kept in step with its F1_2026 and F1_2026_VERSION)."""
FORMATS = (2025, 2026)
UNION_MEMBERS = {
    "FTLP": "fastest_lap", "RTMT": "retirement", "DRSD": "drs_disabled",
    "TMPT": "team_mate_in_pits", "RCWN": "race_winner", "PENA": "penalty",
    "SPTP": "speed_trap", "STLG": "start_lights", "DTSV": "drive_through_penalty_served",
    "SGSV": "stop_go_penalty_served", "FLBK": "flashback", "BUTN": "buttons",
    "OVTK": "overtake", "SCAR": "safety_car", "COLL": "collision",
}
"""Event code → f1-packets' name of its member in the event union (codes with details)."""


def load_2026(root: Path) -> ModuleType:
    """f1-packets 2026.1.1's `packets.py` from `root`, under a name of its own; skips the
    test when it is not there."""
    module_file = root / "f1" / "packets.py"
    if not (module_file.is_file()
            and (root / f"f1_packets-{F1_PACKETS_2026}.dist-info").is_dir()):
        pytest.skip(f"f1-packets {F1_PACKETS_2026} is not in {root}: `make test` (or `make "
                    "f1-packets-2026`) installs it (the 2026 cross-check is skipped)")
    spec = importlib.util.spec_from_file_location("f1_packets_2026", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # plain ctypes: it imports nothing of its package
    return module


@pytest.fixture(scope="session")
def f1_packets_2026() -> ModuleType:
    return load_2026(F1_PACKETS_2026_DIR)


def packets_for(fmt: int, request: pytest.FixtureRequest) -> ModuleType:
    if fmt == 2026:
        module: ModuleType = request.getfixturevalue("f1_packets_2026")
        return module
    return pytest.importorskip("f1.packets", reason="f1-packets not installed (pip install "
                               "-e '.[dev]'): the 2025 cross-check is skipped")


def leaves(value: Any, out: list[Any]) -> None:
    if isinstance(value, ctypes.Array):
        if value._type_ is ctypes.c_char:
            out.append(bytes(value))
            return
        for item in value:
            leaves(item, out)
    elif isinstance(value, ctypes.Structure | ctypes.Union):
        for name, _ in value._fields_:
            leaves(getattr(value, name), out)
    else:
        out.append(value)


def assert_same(ours: list[Any], theirs: list[Any]) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(a, bytes):
            a = a.split(b"\0", 1)[0]
        same = a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=1e-7))
        assert same, (i, a, b)


def test_the_2026_release_decodes_format_2026_and_only_it(f1_packets_2026: ModuleType) -> None:
    keys = set(f1_packets_2026.HEADER_FIELD_TO_PACKET_TYPE)
    assert {fmt for fmt, _, _ in keys} == {2026}
    assert {pid for _, _, pid in keys} == set(range(17))  # packet 16 included


@pytest.mark.parametrize("packet_id", range(17))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(3))
def test_our_layout_reads_what_f1_packets_reads(fmt: int, packet_id: int, seed: int,
                                                request: pytest.FixtureRequest) -> None:
    if (fmt, packet_id) not in LAYOUTS:
        assert packet_id == 3 or (fmt, packet_id) == (2025, 16)  # events: the next test
        return
    packets = packets_for(fmt, request)
    layout = LAYOUTS[(fmt, packet_id)]
    body = random_record(random.Random(f"{fmt}/{packet_id}/{seed}"), layout)
    datagram = encode_packet(Header(fmt, 25, 1, 1, 1, packet_id, 7, 1.5, 3, 3, 0, 255), body)
    parsed = packets.resolve(datagram)
    assert ctypes.sizeof(parsed) == len(datagram)
    theirs: list[Any] = []
    for name, _ in type(parsed)._fields_[1:]:  # after the header
        leaves(getattr(parsed, name), theirs)
    assert_same(list(struct.unpack_from("<" + layout.fmt, datagram, HEADER.size)), theirs)


@pytest.mark.parametrize("code", sorted(UNION_MEMBERS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_our_event_details_read_what_f1_packets_reads(fmt: int, code: str,
                                                      request: pytest.FixtureRequest) -> None:
    packets = packets_for(fmt, request)
    member_fmt, keys = MEMBERS[fmt][code]
    union = random.Random(f"{fmt}{code}").randbytes(12)
    datagram = HEADER.pack(*Header(fmt, 25, 1, 1, 1, 3, 7, 1.5, 3, 3, 0, 255)) \
        + code.encode() + union
    ours = struct.unpack_from(member_fmt, datagram, HEADER.size + 4)
    parsed = packets.resolve(datagram)
    assert bytes(parsed.event_string_code) == code.encode()
    theirs: list[Any] = []
    leaves(getattr(parsed.event_details, UNION_MEMBERS[code]), theirs)
    assert_same(list(ours), theirs)
    assert len(keys) == len(ours)


def test_every_event_code_with_details_is_cross_checked() -> None:
    for fmt in FORMATS:
        assert {code for code, (_, keys) in MEMBERS[fmt].items() if keys} == set(UNION_MEMBERS)


def test_the_makefile_installs_the_2026_release_where_the_fixture_loads_it() -> None:
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert f"F1_2026_VERSION := {F1_PACKETS_2026}\n" in makefile
    assert f"F1_2026 := $(VENV)/{F1_PACKETS_2026_DIR.name}\n" in makefile
    prereqs = {line.split(":")[0]: line.split(":")[1].split()
               for line in makefile.splitlines() if line.startswith(("test:", "demo:"))}
    assert "f1-packets-2026" in prereqs["test"]  # only the tests use it …
    assert "f1-packets-2026" not in prereqs["demo"]  # … so the demo does not download it


def test_without_make_test_the_2026_cross_check_skips_and_says_how_to_get_it(
        tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception,
                       match=r"`make test` \(or `make f1-packets-2026`\) installs it"):
        load_2026(tmp_path)
