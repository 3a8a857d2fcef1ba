"""Wire the uplink from config: the MQTT publisher (identity, token, TLS, topics) and the pump.

The wall clock and the time-sync check are passed in, so a test can start a box whose clock
reads 1970 and watch it capture without minting a token until the clock is good.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from gateway.config import Config
from gateway.outbox import Outbox
from gateway.uplink import auth, topics
from gateway.uplink.mqtt import MqttPublisher
from gateway.uplink.pump import Pump


def _version() -> str:
    try:
        return metadata.version("pitbox")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_uplink(cfg: Config, key_pem: bytes, outbox: Outbox, *,
                 extra_state: Callable[[], dict[str, Any]] = dict,
                 wall_clock: Callable[[], float] = time.time,
                 synced: Callable[[], bool] = auth.timesync_synchronized,
                 jwt_lifetime_s: int | None = None) -> tuple[MqttPublisher, Pump]:
    """`jwt_lifetime_s` overrides `uplink.jwt_minutes` (tests use seconds-long tokens)."""
    dev, up = cfg.device, cfg.uplink
    lifetime_s = jwt_lifetime_s or up.jwt_minutes * 60

    def token() -> str:
        return auth.mint(key_pem, wall_clock(), dev.project, lifetime_s, synced=synced)

    publisher = MqttPublisher(
        host=up.host, port=up.port,
        client_id=auth.client_id(dev.project, dev.region, dev.registry, dev.id),
        token=token, token_lifetime_s=lifetime_s, inflight=up.inflight, tls=up.tls,
        ca_file=up.ca_file, ack_timeout_s=up.ack_timeout_s,
        subscribe=(topics.config(up.prefix, dev.id), topics.commands(up.prefix, dev.id)))
    version = _version()

    def state() -> dict[str, Any]:
        return {"version": version, "outbox_rows": outbox.pending(),
                "outbox_bytes": outbox.used_bytes(), "evicted": dict(outbox.evictions.total),
                "connects": publisher.stats["connects"], "renewals": publisher.stats["renewals"],
                **extra_state()}

    pump = Pump(outbox, publisher, device=dev.id, prefix=up.prefix,
                wall_ns=lambda: int(wall_clock() * 1e9), inflight=up.inflight,
                batch_records=up.batch_records, rate_per_s=up.messages_per_s,
                state=state, state_every_s=up.state_every_s)
    return publisher, pump
