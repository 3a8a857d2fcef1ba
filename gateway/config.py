"""The box's configuration: one TOML file over built-in defaults, loaded into frozen dataclasses.

Every key has a default, so the demo needs no file. An unknown key or a value of the wrong
type is a `ConfigError` naming the key and the file, because a typo at a venue must not
silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str = "pitbox-demo"
    project: str = "pitbox-demo"  # the JWT audience
    region: str = "europe-west1"
    registry: str = "pitbox"
    key_path: str = "device_key.pem"  # RSA private key, never leaves the box


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    f1_bind: str = "0.0.0.0"
    f1_port: int = 20777
    f1_extra_ports: tuple[int, ...] = ()  # more listening ports: one per rig, if wanted
    forward: tuple[str, ...] = ()  # "host:port" of other telemetry apps: every datagram, unchanged
    idle_after_s: float = 10.0  # a rig silent this long is idle (not an error)
    rig_names: dict[str, str] = field(default_factory=dict)  # "ip" or "ip:port" -> name


@dataclass(frozen=True, slots=True)
class NormalizeConfig:
    sample_hz: float = 10.0


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: str = "outbox.sqlite"
    commit_window_ms: int = 40  # <= 50; 40 keeps UDP-to-broker p99 under 50 ms (bench/uplink_latency.py)
    budget_mb: float = 1024.0  # size cap; when full the oldest samples go first (0 = no cap)
    min_free_mb: float = 64.0  # disk space kept free: below it the outbox stops growing


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "/devices"
    tls: bool = False
    ca_file: str = ""
    jwt_minutes: int = 60
    inflight: int = 20
    batch_records: int = 500  # records per MQTT message (≤ 256 KB is also enforced)
    messages_per_s: float = 100.0  # Cloud IoT Core's per-device publish limit
    state_every_s: float = 10.0  # device state to /devices/{id}/state (never more often)
    ack_timeout_s: float = 60.0  # no PUBACK for this long while messages wait: reconnect


@dataclass(frozen=True, slots=True)
class LedsConfig:
    factory: str = "mock"  # "off", "mock" (no real pin), "auto" (a Pi), or a gpiozero factory name
    data_pin: int = 17  # BCM numbers: green, game data
    uplink_pin: int = 27  # blue, uplink
    alarm_pin: int = 22  # red, clock/error/full
    active_high: bool = True


@dataclass(frozen=True, slots=True)
class StatusConfig:
    health_file: str = ""  # empty: $RUNTIME_DIRECTORY/health.json under systemd, else none
    outbox_budget_rows: int = 500_000  # buffered rows shown as a full buffer on the LEDs


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The TCP receiver for iRacing shims (`pitbox shim` on each team member's PC)."""

    enabled: bool = False
    bind: str = "0.0.0.0"
    port: int = 20778
    pairing_key: str = ""  # shared with the shims; every frame is HMAC-SHA256'd with it


@dataclass(frozen=True, slots=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    uplink: UplinkConfig = field(default_factory=UplinkConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    leds: LedsConfig = field(default_factory=LedsConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    source: str = "<defaults>"  # where this config came from, for error messages


def load(path: str | Path | None) -> Config:
    """Read `path` (None: defaults only). Raises `ConfigError` naming the key and the file."""
    if path is None:
        return Config()
    where = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
    cfg: Config = _build(Config, data, where, "", extra={"source": where})
    return cfg


def _build(cls: type[Any], data: Any, where: str, prefix: str, extra: dict[str, Any] | None = None) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - set(extra or {})
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})")
    values = dict(extra or {})
    for name, raw in data.items():
        key = f"{prefix}{name}"
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw, where, key + ".")
        else:
            values[name] = _check(hint, raw, where, key)
    return cls(**values)


def _check(hint: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{where}: {key} must be a table of strings")
        return dict(value)
    if origin is tuple:  # a TOML array, kept immutable: tuple[int, ...] / tuple[str, ...]
        elem = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be an array of {elem.__name__}, "
                              f"got {type(value).__name__} {value!r}")
        return tuple(_check(elem, v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{where}: {key} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"{where}: {key} must not be negative, got {value!r}")
        limits = RANGES.get(key)
        if limits is not None and not limits[0](value):
            raise ConfigError(f"{where}: {key} must be {limits[1]}, got {value!r}")
    return value


# Keys with a range beyond "not negative", and why. A value outside is refused at load, not
# clamped: a box that silently sends faster than its broker allows gets disconnected.
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    # The bound on the group-commit window: a power cut loses at most this much.
    "outbox.commit_window_ms": (lambda v: 0 < v <= 50, "in (0, 50]"),
    # 0 publishes in flight would never send anything.
    "uplink.inflight": (lambda v: v >= 1, ">= 1"),
    "uplink.batch_records": (lambda v: v >= 1, ">= 1"),
    # Cloud IoT Core closes a connection that publishes more than 100 messages/s.
    "uplink.messages_per_s": (lambda v: 0 < v <= 100, "in (0, 100]"),
    # The convention allows tokens of at most 24 h; under a minute the box only reconnects.
    "uplink.jwt_minutes": (lambda v: 1 <= v <= 1440, "in [1, 1440]"),
    # Shorter than a full window takes on a slow venue line would reconnect for nothing.
    "uplink.ack_timeout_s": (lambda v: v >= 1, ">= 1"),
}


def with_overrides(cfg: Config, **sections: dict[str, Any]) -> Config:
    """A copy with some keys replaced, e.g. `with_overrides(cfg, uplink={"port": 1884})`."""
    changes = {name: dataclasses.replace(getattr(cfg, name), **vals) for name, vals in sections.items()}
    return dataclasses.replace(cfg, **changes)
