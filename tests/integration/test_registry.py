"""The registry: devices in the store (SQLite and the Firestore emulator), exported as the
broker's key directory; the broker lets a registered device in and refuses it once revoked;
the bridge keeps each device's last reported state on its document."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.bridge.run import Bridge
from cloud.registry.keys_dir import RegistryError
from cloud.registry.registry import Registry
from cloud.store.base import Store
from pitbox.cli import main
from tests.contract.firestore_fixtures import PROJECT, firestore_emulator, firestore_host
from tests.integration.broker_fixtures import new_rsa_key
from tests.integration.test_bridge import bridge_login, wait_for

__all__ = ["firestore_emulator", "firestore_host"]  # fixtures this module uses


@pytest.fixture(params=["sqlite", "firestore"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The `--store …` options of the CLI for each backend."""
    if request.param == "sqlite":
        return ["--store", "sqlite", "--db", str(tmp_path / "registry.db")]
    request.getfixturevalue("firestore_host")
    return ["--store", "firestore", "--project", PROJECT]


def test_add_list_show_revoke_export_through_the_cli(
        tmp_path: Path, store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    opts = [*store_args, "--keys-dir", str(keys)]
    pubs = {}
    for dev in ("box-01", "box-02"):
        pubs[dev] = tmp_path / f"{dev}.pem"
        pubs[dev].write_bytes(new_rsa_key()[1])
        assert main(["devices", "add", dev, "--public-key", str(pubs[dev]), *opts]) == 0
    assert sorted(p.name for p in keys.iterdir()) == ["box-01.pem", "box-02.pem"]
    assert (keys / "box-01.pem").read_bytes() == pubs["box-01"].read_bytes()
    capsys.readouterr()

    assert main(["devices", "list", *opts]) == 0
    assert capsys.readouterr().out.split() == ["box-01", "box-02"]
    assert main(["devices", "show", "box-01", *opts]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "box-01" and shown["revoked"] is False and "public_key_pem" not in shown
    assert len(shown["key_sha256"]) == 64 and shown["added_utc"].endswith("UTC")

    assert main(["devices", "revoke", "box-01", *opts]) == 0
    assert not (keys / "box-01.pem").exists()
    assert main(["devices", "revoke", "box-01", *opts]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert main(["devices", "list", *opts]) == 0
    assert capsys.readouterr().out.split() == ["box-02"]
    assert main(["devices", "list", "--all", "--long", *opts]) == 0
    assert "REVOKED" in capsys.readouterr().out

    (keys / "box-02.pem").unlink()  # the broker host lost its files: export rebuilds them
    (keys / "stray.pem").write_bytes(b"x")
    assert main(["devices", "export", "--prune", *opts]) == 0
    assert sorted(p.name for p in keys.iterdir()) == ["box-02.pem"]
    assert main(["devices", "show", "nobody", *opts]) == 1
    assert "no device 'nobody'" in capsys.readouterr().err


def test_a_bad_key_or_id_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    from cloud.store.sqlite import SqliteStore
    store = SqliteStore(tmp_path / "r.db")
    registry = Registry(store, tmp_path / "keys")
    with pytest.raises(RegistryError, match="not a PEM public key"):
        registry.add("box-01", b"-----BEGIN NOTHING-----")
    with pytest.raises(RegistryError, match="not valid"):
        registry.add("../etc", new_rsa_key()[1])
    assert store.collections() == [] and not (tmp_path / "keys").exists()
    store.close()


def connect_device(broker: Any, device_id: str, private_pem: bytes) -> mqtt.Client | None:
    """A device login with a fresh JWT; the connected client, or None when refused."""
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 600, "aud": broker.audience}, private_pem,
                       algorithm="RS256")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                         protocol=mqtt.MQTTv5)
    client.username_pw_set("unused", token)
    refused = []
    client.on_connect = lambda c, u, f, reason, p: refused.append(reason.is_failure)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    wait_for("a CONNACK", lambda: refused)
    if refused[0]:
        client.loop_stop()
        return None
    return client


@pytest.fixture
def sqlite_registry(broker: Any, tmp_path: Path) -> Iterator[Registry]:
    from cloud.store.sqlite import SqliteStore
    store: Store = SqliteStore(tmp_path / "cloud.db")
    yield Registry(store, Path(broker.keys_dir))
    store.close()


def test_the_broker_admits_a_registered_device_and_refuses_it_once_revoked_and_its_state_is_kept(
        broker: Any, sqlite_registry: Registry) -> None:
    device_id = f"box-{uuid.uuid4().hex[:8]}"
    private, public = new_rsa_key()
    sqlite_registry.add(device_id, public)
    username, password = bridge_login(broker)
    with Bridge(sqlite_registry.store, host=broker.host, port=broker.port, username=username,
                password=password, group=f"test-{uuid.uuid4().hex[:8]}",
                client_id=f"bridge-{uuid.uuid4().hex[:8]}") as bridge:
        wait_for("the bridge's subscription", bridge.subscribed.is_set)
        client = connect_device(broker, device_id, private)
        assert client is not None, "a registered device was refused"
        info = client.publish(f"/devices/{device_id}/state",
                              json.dumps({"outbox_rows": 7, "version": "0.1.0"}).encode(), qos=1)
        info.wait_for_publish(10)
        wait_for("the state on the device doc",
                 lambda: "state" in (sqlite_registry.show(device_id) or {}))
        client.disconnect()
        client.loop_stop()
    doc = sqlite_registry.show(device_id)
    assert doc is not None
    assert doc["state"] == {"outbox_rows": 7, "version": "0.1.0"}
    assert doc["public_key_pem"] == public.decode() and doc["revoked"] is False

    sqlite_registry.revoke(device_id)
    assert connect_device(broker, device_id, private) is None
    doc = sqlite_registry.show(device_id)
    assert doc is not None and doc["revoked"] is True and doc["state"]["outbox_rows"] == 7
