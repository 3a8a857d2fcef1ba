"""Our own irsdk header checks: corrupt maps and .ibt files are clear errors, never a blow-up."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decode.irsdk import header, session_yaml
from gateway.errors import MalformedPacket
from tests.irsdk_writer import IrsdkFile
from tests.irsdk_writer import session_yaml as make_yaml

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "iracing"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f"real iRacing files not found at {SHARED}")


@pytest.fixture
def good_map(tmp_path: Path) -> bytes:
    return IrsdkFile(tmp_path / "map.bin", make_yaml()).path.read_bytes()


def patched(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<i", out, offset, value)
    return bytes(out)


def test_a_written_map_passes_and_its_values_read_back(good_map: bytes):
    layout = header.check(good_map, ibt=False)
    assert layout.record_count is None and len(layout.buffers) == 3
    assert "CarIdxTrackSurface" in layout.variables
    assert layout.variables["CarIdxTrackSurface"].count == 64
    newest = max(layout.buffers)
    assert header.read_value(good_map, layout, newest[1], "LapCompleted") == -1


@pytest.mark.parametrize("offset,value,reason", [
    (24, 2_000_000_000, "bad_var_count"),  # numVars: pyirsdk would build 2e9 objects
    (24, -1, "bad_var_count"),
    (32, 1000, "bad_buffer_count"),
    (36, 1 << 30, "bad_row_length"),
    (28, 1 << 30, "truncated"),  # var headers past the end
    (20, -5, "bad_offset"),  # session info before the header's end
    (52, 1 << 28, "truncated"),  # a row buffer past the end
    (0, 7, "bad_version"),
])
def test_a_corrupt_header_field_is_rejected_with_its_reason(good_map: bytes, offset: int,
                                                            value: int, reason: str):
    with pytest.raises(header.IrsdkFormatError) as exc:
        header.check(patched(good_map, offset, value), ibt=False)
    assert exc.value.reason == reason


def test_a_variable_header_that_overruns_the_row_is_rejected(good_map: bytes):
    var_off = struct.unpack_from("<i", good_map, 28)[0]
    with pytest.raises(header.IrsdkFormatError, match="bad_variable"):
        header.check(patched(good_map, var_off + 8, 100_000), ibt=False)  # count
    with pytest.raises(header.IrsdkFormatError, match="bad_variable"):
        header.check(patched(good_map, var_off, 9), ibt=False)  # type


def test_empty_and_truncated_files_are_rejected(good_map: bytes):
    with pytest.raises(header.IrsdkFormatError, match="empty"):
        header.check(b"", ibt=False)
    with pytest.raises(header.IrsdkFormatError, match="truncated"):
        header.check(good_map[:100], ibt=False)
    with pytest.raises(header.IrsdkFormatError, match="truncated"):
        header.check(good_map[: len(good_map) // 2], ibt=False)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_random_bytes_only_ever_raise_the_format_error(data: bytes):
    for ibt in (False, True):
        try:
            header.check(data, ibt=ibt)
        except header.IrsdkFormatError:
            pass


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("name,ibt,reason", [
    ("empty_test_file.ibt", True, "empty"),
    ("invalid_test_file.ibt", True, "bad_version"),
    ("invalid_test_file.ibt", False, "bad_version"),
])
def test_the_shipped_broken_files_are_rejected(name: str, ibt: bool, reason: str):
    with pytest.raises(header.IrsdkFormatError) as exc:
        header.check((SHARED / name).read_bytes(), ibt=ibt)
    assert exc.value.reason == reason


@needs_shared
@pytest.mark.shared
@pytest.mark.parametrize("name,ibt,rows", [("amg.ibt", True, 3371),
                                           ("valid_test_file.ibt", True, 390),
                                           ("live_test_file.ibt", False, None)])
def test_the_shipped_good_files_pass_and_their_session_info_parses(name: str, ibt: bool,
                                                                   rows: int | None):
    data = (SHARED / name).read_bytes()
    layout = header.check(data, ibt=ibt)
    assert layout.record_count == rows
    info = session_yaml.parse(header.session_info_bytes(data, layout))
    assert info["WeekendInfo"]["TrackName"] and info["DriverInfo"]["Drivers"]


def test_names_that_break_yaml_are_quoted_and_dates_stay_strings():
    raw = make_yaml(driver_name="O'Neil: the 2nd", team_name="#1 - Team").encode()
    doc = session_yaml.parse(raw)
    car = doc["DriverInfo"]["Drivers"][1]
    assert car["UserName"] == "O'Neil: the 2nd" and car["TeamName"] == "#1 - Team"
    assert doc["WeekendInfo"]["WeekendOptions"]["Date"] == "2026-11-23"
    with pytest.raises(MalformedPacket, match="bad_session_yaml"):
        session_yaml.parse(b"WeekendInfo:\n  a: [\n")


def test_the_shim_refuses_a_corrupt_dump_before_pyirsdk_maps_it(tmp_path: Path,
                                                                 good_map: bytes):
    from gateway.shim.reader import IrsdkReader
    bad = tmp_path / "huge.irsdk"
    bad.write_bytes(patched(good_map, 24, 2_000_000_000))
    reader = IrsdkReader(str(bad))
    with pytest.raises(header.IrsdkFormatError) as exc:
        reader.connect()
    assert exc.value.reason == "bad_var_count" and not reader.connected


@needs_shared
@pytest.mark.shared
def test_the_shim_reads_the_shipped_live_dump():
    from gateway.shim.reader import IrsdkReader
    reader = IrsdkReader(str(SHARED / "live_test_file.ibt"))
    assert reader.connect() and reader.connected
    try:
        values, info = reader.poll()
        assert info is not None and info["WeekendInfo"]["TrackName"] == "monza full"
        assert info["DriverInfo"]["Drivers"][0]["UserID"] == 450313
        assert len(values["CarIdxTrackSurface"]) == 64 and values["SessionNum"] == 0
        assert reader.poll()[1] is None, "session info goes out once per update"
    finally:
        reader.close()
