"""The shim's INI file, in the spirit of Teamtactics' `iracing-client.ini`:

    [shim]
    box = 192.168.1.10:20778   ; the box's relay
    pairing_key = ...          ; from the box's [relay] pairing_key
    id =                       ; this PC's name at the box (default: the host name)
    hz = 60                    ; telemetry polls per second
    send_hz = 10               ; continuous values per second (edges go at once)
    buffer_frames = 600        ; kept while the box is unreachable
    proxy =                    ; optional HTTP CONNECT proxy, host:port
    debug = no
    logfile =                  ; empty: log to the console
    simulate =                 ; an irsdk dump file instead of the live sim

Errors name the key and the file.
"""

from __future__ import annotations

import configparser
import socket
from dataclasses import dataclass, fields, replace
from typing import Any

from gateway.errors import ConfigError

SECTION = "shim"


@dataclass(frozen=True, slots=True)
class ShimConfig:
    box: str = "127.0.0.1:20778"
    pairing_key: str = ""
    id: str = ""
    hz: float = 60.0
    send_hz: float = 10.0
    buffer_frames: int = 600
    proxy: str = ""
    debug: bool = False
    logfile: str = ""
    simulate: str = ""
    source: str = "<defaults>"

    @property
    def shim_id(self) -> str:
        return self.id or socket.gethostname()

    def box_address(self) -> tuple[str, int]:
        return split_address(self.box, "box", self.source)

    def proxy_address(self) -> tuple[str, int] | None:
        return split_address(self.proxy, "proxy", self.source) if self.proxy else None


def split_address(text: str, key: str, where: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {SECTION}.{key} must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def load(path: str | None, **overrides: Any) -> ShimConfig:
    """Read `path` (None: defaults), then apply non-None `overrides` (command-line options)."""
    cfg = ShimConfig()
    if path:
        parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"{path}: cannot read shim config: {exc}") from exc
        if not parser.has_section(SECTION):
            raise ConfigError(f"{path}: no [{SECTION}] section")
        cfg = replace(cfg, source=path, **_values(parser, path))
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if cfg.hz <= 0 or cfg.send_hz < 0 or cfg.buffer_frames < 1:
        raise ConfigError(f"{cfg.source}: {SECTION}.hz, send_hz and buffer_frames must be positive")
    cfg.box_address()
    cfg.proxy_address()
    return cfg


def _values(parser: configparser.ConfigParser, where: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(ShimConfig) if f.name != "source"}
    out: dict[str, Any] = {}
    for key in parser[SECTION]:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{SECTION}.{key}' "
                              f"(known: {', '.join(sorted(known))})")
        kind = type(getattr(ShimConfig(), key))
        try:
            if kind is bool:
                out[key] = parser.getboolean(SECTION, key)
            elif kind in (int, float):
                out[key] = kind(parser.get(SECTION, key))
            else:
                out[key] = parser.get(SECTION, key).strip()
        except ValueError as exc:
            raise ConfigError(f"{where}: {SECTION}.{key} must be {kind.__name__}: {exc}") from exc
    return out
