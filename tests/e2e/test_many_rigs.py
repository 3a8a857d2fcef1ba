"""A venue's worth of rigs through the whole box: 20 simulated F1 rigs, each its own game and
session, written to a capture file and replayed by the code `pitbox replay FILE` runs
(gateway.replay.replay_into) through the gateway → outbox → Mosquitto (auth plugin) →
bridge → store. Every lap of every car of every rig must be in the store, once, and every
session marked as historical (a replay, not live)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

from cloud.bridge.run import Bridge
from cloud.registry import keys_dir
from cloud.store.sqlite import SqliteStore
from firmware.cli import provision
from gateway.replay import replay_into
from gateway.service import Gateway
from gateway.sim.f1 import write_rigs_capture
from tests.e2e.test_pipeline import gateway_config, wait_for
from tests.integration.broker_fixtures import BrokerHandle

RIGS, CARS, LAPS = 20, 8, 2


def field_laps(store: SqliteStore) -> dict[str, set[tuple[int, int]]]:
    """Per session: (car, lap) of every lap doc, own car (`{sid}/{lap}`) and field alike."""
    out: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for coll in store.collections():
        sid, _, suffix = coll.partition("~")
        if suffix not in ("", "field") or coll in ("deadletters", "devices"):
            continue
        for doc_id, data in store.docs(coll):
            if doc_id.isdigit() or (suffix == "field" and doc_id[-1].isdigit()
                                    and "-" in doc_id and "state" not in doc_id):
                out[sid].add((data["car_idx"], data["lap_no"]))
    return out


def test_twenty_rigs_replayed_from_a_capture_land_every_lap_of_every_car_in_the_store(
        tmp_path: Path, broker: BrokerHandle) -> None:
    device_id, pub, _ = provision(tmp_path / "box", "e2e-venue-01")
    keys_dir.add(broker.keys_dir, device_id, pub.read_bytes())
    store = SqliteStore(tmp_path / "store.sqlite")
    bridge = Bridge(store, host=broker.host, port=broker.port, username=broker.bridge_username,
                    password=broker.bridge_password, prefix=broker.prefix,
                    client_id="bridge-e2e-venue", group="e2e-venue")
    bridge.start()
    capture = tmp_path / "venue.pbxcap"
    datagrams = write_rigs_capture(capture, RIGS, 2025, laps=LAPS, hz=10, lap_time_s=8,
                                   num_cars=CARS)
    gw = Gateway(gateway_config(tmp_path, broker, device_id), live=False)  # as `pitbox replay`
    try:
        assert bridge.subscribed.wait(10)
        assert asyncio.run(replay_into(gw, str(capture), speed=0, drain_s=60)), \
            "outbox did not drain"
        assert gw.pipeline.datagrams == datagrams
        assert not gw.pipeline.dropped and len(gw.pipeline.rigs) == RIGS
        emitted_laps = gw.pipeline.records["lap"]
        assert emitted_laps == RIGS * CARS * LAPS
        want = {(car, lap) for car in range(CARS) for lap in range(1, LAPS + 1)}
        assert wait_for(lambda: sum(map(len, field_laps(store).values())) >= emitted_laps, 30)
        got = field_laps(store)
        assert len(got) == RIGS
        assert all(laps == want for laps in got.values()), {
            sid: sorted(want - laps) for sid, laps in got.items() if laps != want}
        infos = {sid: dict(store.docs(sid)).get("info", {}) for sid in got}
        assert all(info.get("historical") is True for info in infos.values()), infos
        assert not store.docs("deadletters")
    finally:
        bridge.stop()
        store.close()
