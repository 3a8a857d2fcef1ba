"""Validation of irsdk memory maps and `.ibt` files before pyirsdk sees them.

pyirsdk trusts every number in a header: a huge `numVars` makes it build millions of
objects, a bad offset reads past the end (or raises deep inside `struct`). This module reads
the header, the `.ibt` disk sub-header and every variable header itself and checks each
offset and length against the real size, so a corrupt file is one clear `IrsdkFormatError`
and never a memory blow-up. Pure: it reads only the bytes (or mmap) handed in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.errors import MalformedPacket

if TYPE_CHECKING:  # only the type: this module maps no file itself
    import mmap

    Buffer = bytes | bytearray | memoryview | mmap.mmap  # a whole file, read or mapped

HEADER_BYTES = 112
DISK_HEADER_BYTES = 32
VAR_HEADER_BYTES = 144
MAX_VARS = 4096  # iRacing ships ~300 live, ~270 in .ibt
MAX_BUFS = 4  # the SDK's IRSDK_MAX_BUFS
MAX_COUNT = 1024  # per-variable array length (CarIdx* arrays are 64)
TYPE_SIZES = {0: 1, 1: 1, 2: 4, 3: 4, 4: 4, 5: 8}  # char, bool, int, bitfield, float, double
TYPE_CODES = {0: "c", 1: "?", 2: "i", 3: "I", 4: "f", 5: "d"}
_HEAD = struct.Struct("<10i")
_VARBUF = struct.Struct("<2i")
_DISK = struct.Struct("<Qddii")
_VAR = struct.Struct("<3i?3x32s64s32s")


class IrsdkFormatError(MalformedPacket):
    """A memory map or `.ibt` file that is not a sane irsdk layout; `reason` is countable."""


@dataclass(frozen=True, slots=True)
class VarSpec:
    name: str
    type: int
    offset: int  # in the row; unaligned
    count: int
    unit: str


@dataclass(frozen=True, slots=True)
class IrsdkLayout:
    """What the header says, checked. `record_count` is None for a live memory map."""

    version: int
    tick_rate: int
    session_info_update: int
    session_info: tuple[int, int]  # offset, length
    buf_len: int
    buffers: tuple[tuple[int, int], ...]  # (tick_count, offset)
    variables: dict[str, VarSpec]
    record_count: int | None
    start_epoch_s: int | None = None


def check(data: Buffer, *, ibt: bool) -> IrsdkLayout:
    """Validate `data` (a whole file or map). Raises `IrsdkFormatError` saying what is wrong."""
    size = len(data)
    if size == 0:
        raise IrsdkFormatError("empty", "the file is empty")
    need = HEADER_BYTES + (DISK_HEADER_BYTES if ibt else 0)
    if size < need:
        raise IrsdkFormatError("truncated", f"{size} bytes, a header needs {need}")
    (version, _status, tick_rate, info_update, info_len, info_off, num_vars, var_off, num_buf,
     buf_len) = _HEAD.unpack_from(data, 0)
    if version not in (1, 2):
        raise IrsdkFormatError("bad_version", f"header version {version} (want 1 or 2)")
    if not 0 < num_vars <= MAX_VARS:
        raise IrsdkFormatError("bad_var_count", f"{num_vars} variables (limit {MAX_VARS})")
    if not 0 < num_buf <= MAX_BUFS:
        raise IrsdkFormatError("bad_buffer_count", f"{num_buf} buffers (limit {MAX_BUFS})")
    if not 0 < buf_len <= size:
        raise IrsdkFormatError("bad_row_length", f"row length {buf_len} in a {size}-byte file")
    _span(size, var_off, num_vars * VAR_HEADER_BYTES, "variable headers", need)
    _span(size, info_off, info_len, "session info", need)
    buffers = tuple(_VARBUF.unpack_from(data, 48 + 16 * i) for i in range(num_buf))
    records = None
    start = None
    if ibt:
        start, _t0, _t1, _laps, records = _DISK.unpack_from(data, HEADER_BYTES)
        if records < 0:
            raise IrsdkFormatError("bad_record_count", f"{records} records")
        _span(size, buffers[0][1], records * buf_len, f"{records} rows of {buf_len} bytes", need)
    else:
        for tick, off in buffers:
            _span(size, off, buf_len, f"row buffer at tick {tick}", need)
    variables = _variables(data, var_off, num_vars, buf_len)
    return IrsdkLayout(version, tick_rate, info_update, (info_off, info_len), buf_len,
                       tuple((t, o) for t, o in buffers), variables, records, start)


def _span(size: int, offset: int, length: int, what: str, floor: int) -> None:
    if offset < floor or length < 0 or offset + length > size:
        raise IrsdkFormatError("bad_offset" if offset + length <= size or offset < floor
                               else "truncated",
                               f"{what} at {offset}+{length} outside the {size}-byte file")


def _variables(data: Buffer, var_off: int, num_vars: int,
               buf_len: int) -> dict[str, VarSpec]:
    out: dict[str, VarSpec] = {}
    for i in range(num_vars):
        vtype, offset, count, _as_time, raw_name, _desc, raw_unit = _VAR.unpack_from(
            data, var_off + i * VAR_HEADER_BYTES)
        name = raw_name.split(b"\0", 1)[0].decode("latin-1")
        if vtype not in TYPE_SIZES or not 0 < count <= MAX_COUNT or not name:
            raise IrsdkFormatError("bad_variable", f"variable {i} {name!r}: type {vtype}, "
                                   f"count {count}")
        if offset < 0 or offset + count * TYPE_SIZES[vtype] > buf_len:
            raise IrsdkFormatError("bad_variable", f"variable {name!r} at {offset} overruns "
                                   f"the {buf_len}-byte row")
        out[name] = VarSpec(name, vtype, offset, count,
                            raw_unit.split(b"\0", 1)[0].decode("latin-1"))
    return out


def session_info_bytes(data: Buffer, layout: IrsdkLayout) -> bytes:
    """The session-info YAML region, trailing NULs off."""
    off, length = layout.session_info
    return bytes(data[off:off + length]).rstrip(b"\0")


def read_value(data: Buffer, layout: IrsdkLayout, row_offset: int,
               name: str) -> object:
    """One variable of the row at `row_offset` (a scalar, or a list for arrays)."""
    spec = layout.variables[name]
    values = struct.unpack_from("<" + TYPE_CODES[spec.type] * spec.count, data,
                                row_offset + spec.offset)
    return values[0] if spec.count == 1 else list(values)
