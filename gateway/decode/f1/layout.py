"""Packet layouts as data: a `Layout` lists a NamedTuple's fields in wire order with their
wire types; from it come one `struct.Struct` for the whole body, a decoder and an encoder.

Why generated code: decoding runs at up to 60 Hz × 5 packets × 20 rigs on a Raspberry Pi, and
a loop that interprets the layout per field is several times slower than straight-line code.
So each layout is turned, once at import, into one Python expression over the values of a
single `struct.unpack_from` (see `Layout.decoder`), the way `collections.namedtuple` builds
its class. The encoder is generated the same way (the simulator encodes thousands of packets
per second), into a function that appends the struct values of a record to a list.

Field notation, `"name:code"` separated by spaces (fields of the NamedTuple that a format does
not carry are left out and take the class default):

    B b H h I i Q f d   one little-endian scalar        4H, 8B   a tuple of n scalars
    ?                   u8 flag → bool                   32s     NUL-terminated UTF-8 → str
    ms                  u16 ms part + u8 minutes part → one int of ms (EA's split times)
    milli               i16 in thousandths → float (2026 g-forces)
    (BBIf)              a tuple of mixed scalars, in order (rule/assist option blocks)
    50x22B              a tuple of 50 tuples of 22 scalars (lap positions)

Nested records are given as `(name, Layout, count)`: count 0 is one record, n a tuple of n.
Encoders pad short tuples with zeros (and cut long ones), so a caller may give just the cars
it has.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

_SCALARS = frozenset("BbHhIiQfd")
_TOKEN = re.compile(
    r"(?P<name>\w+):(?P<code>\(\w+\)|\d+x\d+[BbHh]|\d*[BbHhIiQfd]|\?|ms|milli|\d+s)")
_MINUTE_MS = 60_000


def _text(raw: bytes) -> str:
    """A NUL-terminated UTF-8 name (participants, lobby) as str."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class _Field:
    """One wire field: its struct code, how many struct values it spans, and both directions."""

    __slots__ = ("count", "fmt", "kind", "name", "sub", "width")

    def __init__(self, name: str, kind: str, fmt: str, width: int,
                 sub: Layout | None = None, count: int = 0) -> None:
        self.name: str = name
        self.kind: str = kind
        self.fmt: str = fmt  # struct codes of all its values
        self.width: int = width  # how many struct values
        self.sub: Layout | None = sub
        self.count: int = count

    def expr(self, i: int) -> str:
        """Python source reading this field from the values tuple `v` at index i."""
        kind = self.kind
        if kind == "scalar":
            return f"v[{i}]"
        if kind == "bool":
            return f"(v[{i}] != 0)"
        if kind == "ms":
            return f"(v[{i}] + v[{i + 1}] * {_MINUTE_MS})"
        if kind == "milli":
            return f"(v[{i}] / 1000)"
        if kind == "str":
            return f"_text(v[{i}])"
        if kind == "tuple":
            return f"v[{i}:{i + self.width}]"
        if kind == "matrix":
            n = self.count
            return "(" + "".join(f"v[{i + r * n}:{i + (r + 1) * n}], "
                                 for r in range(self.width // n)) + ")"
        assert self.sub is not None
        if not self.count:
            return self.sub.expr(i)
        step = self.sub.width
        return "(" + "".join(self.sub.expr(i + k * step) + ", " for k in range(self.count)) + ")"


def _zeros(codes: str) -> list[Any]:
    return [0.0 if c in "fd" else 0 for c in codes]


def _expand(code: str) -> str:
    """"4H" → "HHHH"; the struct codes of a tuple field, one per element."""
    m = re.fullmatch(r"(\d*)([BbHhIiQfd])", code)
    assert m, code
    return m.group(2) * int(m.group(1) or 1)


def _parse(spec: str) -> list[_Field]:
    fields = []
    pos = 0
    for m in _TOKEN.finditer(spec):
        assert not spec[pos:m.start()].strip(), f"bad layout text: {spec[pos:m.start()]!r}"
        pos = m.end()
        name, code = m.group("name"), m.group("code")
        if code in _SCALARS:
            fields.append(_Field(name, "scalar", code, 1))
        elif code == "?":
            fields.append(_Field(name, "bool", "B", 1))
        elif code == "ms":
            fields.append(_Field(name, "ms", "HB", 2))
        elif code == "milli":
            fields.append(_Field(name, "milli", "h", 1))
        elif "x" in code:
            rows, cols, scalar = re.fullmatch(r"(\d+)x(\d+)(\w)", code).groups()  # type: ignore[union-attr]
            width = int(rows) * int(cols)
            fields.append(_Field(name, "matrix", scalar * width, width, count=int(cols)))
        elif code.endswith("s"):
            fields.append(_Field(name, "str", code, 1))
        else:
            codes = "".join(_expand(c) for c in re.findall(r"\d*[BbHhIiQfd]", code.strip("()")))
            fields.append(_Field(name, "tuple", codes, len(codes)))
    assert not spec[pos:].strip(), f"bad layout text: {spec[pos:]!r}"
    return fields


Part: TypeAlias = "str | tuple[str, Layout, int]"
"""A piece of a layout: field text, or (name, nested layout, count)."""


class Layout:
    """The wire layout of one NamedTuple class in one packet format.

    `parts` are field texts (see the module docstring) and `(name, Layout, count)` nests.
    Every wire field must be a field of `cls`; every field of `cls` the wire lacks must have a
    default. Layouts of one class in different formats may order the wire differently: values
    are always built in the class's field order.
    """

    def __init__(self, cls: type[Any], *parts: Part) -> None:
        self.cls = cls
        self.fields: list[_Field] = []
        for part in parts:
            if isinstance(part, str):
                self.fields += _parse(part)
            else:
                name, sub, count = part
                fmt = sub.fmt * max(count, 1)
                self.fields.append(_Field(name, "record", fmt, sub.width * max(count, 1),
                                          sub, count))
        names = [f.name for f in self.fields]
        unknown = set(names) - set(cls._fields)
        assert not unknown and len(set(names)) == len(names), (cls.__name__, unknown)
        missing = set(cls._fields) - set(names) - set(cls._field_defaults)
        assert not missing, f"{cls.__name__}: no wire field and no default for {missing}"
        self.fmt: str = "".join(f.fmt for f in self.fields)
        self.width: int = sum(f.width for f in self.fields)  # values in the flat struct tuple
        self.size: int = struct.calcsize("<" + self.fmt)  # bytes
        self._by_name = {f.name: f for f in self.fields}
        self._getters = [(cls._fields.index(f.name), f) for f in self.fields]
        self._zero: Any = None
        # every wire field a scalar, in the class's order: a record is just a slice
        self._plain = all(f.kind == "scalar" for f in self.fields) and \
            [f.name for f in self.fields] == list(cls._fields)

    def expr(self, i: int) -> str:
        """Source that builds one `cls` from the values tuple `v` starting at index i."""
        cls_ref = f"_c{id(self.cls)}"
        _SHARED_NS[cls_ref] = self.cls
        if self._plain:  # the common case: a C-level slice, no per-field work
            return f"_new({cls_ref}, v[{i}:{i + self.width}])"
        starts: dict[str, int] = {}
        at = i
        for f in self.fields:
            starts[f.name] = at
            at += f.width
        items = []
        for name in self.cls._fields:
            field = self._by_name.get(name)
            if field is None:
                ref = f"_d{id(self.cls)}_{name}"
                _SHARED_NS[ref] = self.cls._field_defaults[name]
                items.append(ref)
            else:
                items.append(field.expr(starts[name]))
        return f"_new({cls_ref}, (" + ", ".join(items) + ",))"

    def _encoder_source(self, done: set[int]) -> list[str]:
        """Source of `_e{id}(o, out)`, appending the struct values of record `o` to `out` (and
        of the functions of nested layouts first)."""
        if id(self) in done:
            return []
        done.add(id(self))
        lines: list[str] = []
        body = ["    ap = out.append", "    ex = out.extend"]
        if self._plain:
            body.append("    ex(o)")
        for index, f in [] if self._plain else self._getters:
            value = f"o[{index}]"
            if f.kind == "scalar":
                body.append(f"    ap({value})")
            elif f.kind == "bool":
                body.append(f"    ap(1 if {value} else 0)")
            elif f.kind == "ms":
                body.append(f"    ex(_split({value}))")
            elif f.kind == "milli":
                body.append(f"    ap(round({value} * 1000))")
            elif f.kind == "str":
                body.append(f"    ap({value}.encode('utf-8'))")
            elif f.kind == "tuple":
                zeros = f"_z{id(f)}"
                _SHARED_NS[zeros] = tuple(_zeros(f.fmt))
                body.append(f"    ex(_fit({value}, {f.width}, {zeros}))")
            elif f.kind == "matrix":
                body.append(f"    _matrix({value}, {f.width // f.count}, {f.count}, out)")
            else:
                assert f.sub is not None
                lines += f.sub._encoder_source(done)
                if not f.count:
                    body.append(f"    _e{id(f.sub)}({value}, out)")
                else:
                    pad = f"_p{id(f)}"
                    _SHARED_NS[pad] = (f.sub.zero,) * f.count
                    body.append(f"    for c in _fit({value}, {f.count}, {pad}): "
                                f"_e{id(f.sub)}(c, out)")
        return lines + [f"def _e{id(self)}(o, out):", *body, ""]

    @property
    def zero(self) -> Any:
        """The record decoded from all-zero bytes: what an empty slot looks like."""
        if self._zero is None:
            self._zero = self.decoder()(bytes(self.size), 0)
        return self._zero

    def decoder(self) -> Callable[[bytes, int], Any]:
        """A function (data, offset) → `cls`, compiled from this layout."""
        body = struct.Struct("<" + self.fmt)
        source = f"def _decode(data, offset):\n    v = _unpack(data, offset)\n" \
                 f"    return {self.expr(0)}\n"
        namespace = dict(_SHARED_NS, _unpack=body.unpack_from)
        exec(compile(source, f"<layout {self.cls.__name__}>", "exec"), namespace)  # noqa: S102
        return namespace["_decode"]  # type: ignore[no-any-return]

    def encoder(self) -> Callable[[Any], bytes]:
        """A function `cls` → bytes, the inverse of `decoder`."""
        source = "\n".join(self._encoder_source(set()))
        namespace = dict(_SHARED_NS)
        exec(compile(source, f"<layout {self.cls.__name__} encoder>", "exec"), namespace)  # noqa: S102
        flatten = namespace[f"_e{id(self)}"]
        pack = struct.Struct("<" + self.fmt).pack

        def encode(obj: Any) -> bytes:
            out: list[Any] = []
            flatten(obj, out)
            return pack(*out)

        return encode


def _split(ms: int) -> tuple[int, int]:
    """ms → (ms part, minutes part), EA's wire form of a split time."""
    minutes, part = divmod(int(ms), _MINUTE_MS)
    return part, minutes


def _fit(values: Any, n: int, padding: tuple[Any, ...]) -> tuple[Any, ...]:
    """`values` as exactly n items: cut, or padded from `padding` (n items of "empty")."""
    items: tuple[Any, ...] = tuple(values)
    return items if len(items) == n else items[:n] + padding[len(items):]


def _matrix(rows: Any, n_rows: int, n_cols: int, out: list[Any]) -> None:
    zeros = (0,) * n_cols
    for row in _fit(rows, n_rows, (zeros,) * n_rows):
        out.extend(_fit(row, n_cols, zeros))


_SHARED_NS: dict[str, Any] = {"_new": tuple.__new__, "_text": _text, "_split": _split,
                              "_fit": _fit, "_matrix": _matrix}
"""Names the generated decoders see: classes and defaults by id, and the helpers."""


def with_cars(layout: Sequence[Part], num_cars: int) -> list[Part]:
    """A packet's parts with every per-car array (count 22) set to `num_cars` (2026: 24)."""
    return [(p[0], p[1], num_cars) if isinstance(p, tuple) and p[2] == 22 else p
            for p in layout]
