"""A cloud of its own for each fault test: Mosquitto (with persistence, so a restart keeps
the bridge's session), the bridge into a SQLite store, and a recorder on the bridge account
with a persistent session too. Each test may stop and start the broker; all is stopped here."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.bridge.run import Bridge
from cloud.broker.run import Broker
from cloud.store.sqlite import SqliteStore
from tests.faults.cloud import Cloud


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    keys = tmp_path / "keys"
    keys.mkdir()
    password = secrets.token_urlsafe(12)
    broker = Broker(tmp_path / "broker", audience="pitbox-faults", keys_dir=keys,
                    accounts={"bridge": password}, persistence=True, hold_devices=True)
    broker.start()
    store = SqliteStore(tmp_path / "store.sqlite")
    bridge = Bridge(store, host=broker.host, port=broker.port, username="bridge",
                    password=password, client_id="faults-bridge", group="faults")
    c = Cloud(broker, keys, password, store, bridge)
    try:
        bridge.start()
        assert bridge.subscribed.wait(10), "bridge did not subscribe"
        c.start_recorder()
        yield c
    finally:
        c.close()
