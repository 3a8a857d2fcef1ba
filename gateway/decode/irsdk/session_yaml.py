"""iRacing's session-info YAML → plain dicts (the shape pyirsdk's `ir['DriverInfo']` gives).

The sim writes names unquoted (`UserName: O'Neil: the 2nd` breaks YAML), and dates that
PyYAML would turn into datetimes; old builds write cp1252. So: decode with a fallback, quote
the name fields, and parse with a loader that has no timestamp resolver. Pure.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from gateway.errors import MalformedPacket

_QUOTED_KEYS = ("UserName", "TeamName", "AbbrevName", "Initials", "DriverSetupName",
                "CarScreenName", "CarScreenNameShort", "TrackDisplayName")
_NAME_LINE = re.compile(r"^(?P<key>\s*-?\s*(?:" + "|".join(_QUOTED_KEYS) + r"): )(?P<value>.+)$",
                        re.MULTILINE)


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """SafeLoader without the timestamp resolver (dates stay strings)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _quote(m: re.Match[str]) -> str:
    value = m.group("value").strip()
    if value.startswith('"') and value.endswith('"') and len(value) > 1:
        value = value[1:-1]
    return m.group("key") + '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(raw: bytes) -> dict[str, Any]:
    """The whole session info as a dict. Raises `MalformedPacket("bad_session_yaml")`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    text = _NAME_LINE.sub(_quote, text.replace("\t", " "))
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise MalformedPacket("bad_session_yaml", str(exc).splitlines()[0]) from exc
    if not isinstance(doc, dict):
        raise MalformedPacket("bad_session_yaml", "not a mapping")
    return doc
