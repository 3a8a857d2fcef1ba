"""`pitbox iracing ingest FILE.ibt` (no --json): the file's laps go through the outbox, the
broker and the bridge into the store, under the solo-session Teamtactics key."""

from __future__ import annotations

from pathlib import Path

from cloud.bridge.run import Bridge
from cloud.registry import keys_dir
from cloud.store.sqlite import SqliteStore
from firmware.cli import provision
from pitbox.cli import main
from tests.e2e.test_pipeline import wait_for
from tests.integration.broker_fixtures import BrokerHandle
from tests.integration.test_iracing_ingest import stint_rows
from tests.irsdk_writer import session_yaml, write_ibt

SOLO = "Ann Able@mx5 mx52016#spa combined#0"


def test_ingest_publishes_an_ibt_stint_into_the_store(tmp_path: Path, broker: BrokerHandle):
    device_id, pub, _ = provision(tmp_path / "box", "e2e-ibt-01")
    keys_dir.add(broker.keys_dir, device_id, pub.read_bytes())
    ibt = write_ibt(tmp_path / "stint.ibt", session_yaml(session_id=0, team_id=0), stint_rows())
    toml = tmp_path / "box.toml"
    toml.write_text(
        f'[device]\nid = "{device_id}"\nproject = "{broker.audience}"\n'
        f'key_path = "{tmp_path / "box" / "device_key.pem"}"\n'
        f'[outbox]\npath = "{tmp_path / "box" / "outbox.sqlite"}"\n'
        f'[uplink]\nhost = "{broker.host}"\nport = {broker.port}\nprefix = "{broker.prefix}"\n')
    store = SqliteStore(tmp_path / "store.sqlite")
    bridge = Bridge(store, host=broker.host, port=broker.port, username=broker.bridge_username,
                    password=broker.bridge_password, prefix=broker.prefix,
                    client_id="bridge-e2e-ibt", group="e2e-ibt")
    bridge.start()
    try:
        assert bridge.subscribed.wait(10)
        assert main(["iracing", "ingest", str(ibt), "--config", str(toml),
                     "--drain-timeout", "30"]) == 0

        def laps() -> dict[str, dict]:  # type: ignore[type-arg]
            return {d: body for d, body in store.docs(SOLO) if d.isdigit()}

        assert wait_for(lambda: sorted(laps()) == ["1", "2", "3"], 15), store.collections()
        got = laps()
        assert [got[n]["stint"] for n in ("1", "2", "3")] == [1, 1, 2]
        assert got["3"]["fuel_used"] is None and got["2"]["fuel_used"] == 2.0
        info = store.get(SOLO, "info")
        assert info is not None and info["game"] == "iracing" and info["track"] == "spa combined"
    finally:
        bridge.stop()
        store.close()
