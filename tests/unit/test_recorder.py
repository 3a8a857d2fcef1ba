"""The capture file survives a pulled plug: a torn or corrupt tail costs only that record."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.recorder import (
    MAGIC,
    Captured,
    CaptureError,
    CaptureReader,
    CaptureWriter,
    iter_datagrams,
    read_capture,
)

RECORDS = [
    Captured(1_700_000_000_000_000_000, "10.0.0.21:52301", b"\x01\x02\x03"),
    Captured(1_700_000_000_050_000_000, "10.0.0.22:20777", bytes(range(256)) * 5),
    Captured(1_700_000_000_100_000_000, "[::1]:9", b""),
    Captured(1_700_000_000_150_000_000, "10.0.0.21:52301", b"last record payload"),
]


def write_all(path: Path, records: list[Captured]) -> None:
    with CaptureWriter(path) as w:
        for r in records:
            w.write(r.payload, r.src, r.ts_ns)


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    path = tmp_path / "a.pbxcap"
    write_all(path, RECORDS)
    assert path.read_bytes().startswith(MAGIC)
    reader = CaptureReader(path)
    assert list(reader) == RECORDS
    assert (reader.records, reader.skipped_bytes) == (len(RECORDS), 0)


def test_reopening_appends_without_a_second_magic(tmp_path: Path) -> None:
    path = tmp_path / "a.pbxcap"
    write_all(path, RECORDS[:2])
    write_all(path, RECORDS[2:])
    assert path.read_bytes().count(MAGIC) == 1
    assert list(read_capture(path)) == RECORDS


def test_an_empty_existing_file_gets_the_magic(tmp_path: Path) -> None:
    path = tmp_path / "a.pbxcap"
    path.touch()
    write_all(path, RECORDS[:1])
    assert list(read_capture(path)) == RECORDS[:1]


def test_a_torn_last_record_leaves_every_earlier_record_intact(tmp_path: Path) -> None:
    path = tmp_path / "a.pbxcap"
    write_all(path, RECORDS[:-1])
    intact = path.stat().st_size
    write_all(path, RECORDS[-1:])
    full = path.read_bytes()
    for cut in range(intact, len(full)):
        path.write_bytes(full[:cut])
        reader = CaptureReader(path)
        assert list(reader) == RECORDS[:-1], cut
        assert reader.skipped_bytes == cut - intact


@pytest.mark.parametrize("flip_at", [0, 5, 13, 20, -1])
def test_a_corrupt_record_ends_the_iteration_and_is_counted(tmp_path: Path, flip_at: int) -> None:
    path = tmp_path / "a.pbxcap"
    write_all(path, RECORDS[:1])
    start = path.stat().st_size
    write_all(path, RECORDS[1:])
    data = bytearray(path.read_bytes())
    second_record_end = start + 13 + len(RECORDS[1].src) + len(RECORDS[1].payload) + 4
    pos = start + flip_at if flip_at >= 0 else second_record_end - 1
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = CaptureReader(path)
    assert list(reader) == RECORDS[:1]
    assert reader.skipped_bytes == len(data) - start


def test_a_file_without_the_magic_is_a_capture_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pbxcap"
    path.write_bytes(b"NOTACAP\n" + bytes(40))
    with pytest.raises(CaptureError):
        list(read_capture(path))
    with pytest.raises(ValueError):  # CaptureError is also a ValueError
        CaptureReader(path)


def test_iter_datagrams_reads_a_capture_or_a_raw_datagram(tmp_path: Path) -> None:
    cap, raw = tmp_path / "a.pbxcap", tmp_path / "one.bin"
    write_all(cap, RECORDS)
    raw.write_bytes(b"\xe8\x07raw datagram")
    assert list(iter_datagrams(cap)) == RECORDS
    assert list(iter_datagrams(raw)) == [Captured(0, "file", b"\xe8\x07raw datagram")]


def test_iter_datagrams_says_a_torn_tail_once_read_and_quiet_says_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cap = tmp_path / "cut.pbxcap"
    write_all(cap, RECORDS)
    cap.write_bytes(cap.read_bytes()[:-3])  # the last record torn
    with caplog.at_level("WARNING", logger="pitbox.recorder"):
        assert list(iter_datagrams(cap, quiet=True)) == RECORDS[:-1]
        assert not caplog.records
        assert list(iter_datagrams(cap, reader="replay")) == RECORDS[:-1]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"replay: {cap}: torn tail: ") and "after record 3" in line
