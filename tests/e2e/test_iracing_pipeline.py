"""iRacing end to end with every part real: scripted sims (irsdk map files rewritten like
the live sim) → two `pitbox shim`s (pyirsdk test-file mode) → TCP relay on the box →
IRacingBox → SQLite outbox → Mosquitto with the auth plugin → bridge → SQLite store.

The team: Ann drives first, Bob's PC watches (the teammate's view: no fuel); a practice lap,
a session change to the race, two laps, a pit stop with a refuel and a driver swap to Bob,
a lap, a tow, the exit from the stall after the tow, and a last lap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from cloud.bridge.run import Bridge
from cloud.registry import keys_dir
from cloud.store.sqlite import SqliteStore
from firmware.cli import provision
from gateway import config
from gateway.service import Gateway
from gateway.shim.config import ShimConfig
from gateway.shim.run import Shim
from tests.e2e.test_pipeline import wait_for
from tests.integration.broker_fixtures import BrokerHandle
from tests.irsdk_writer import TeamSim

KEY = "e2e-pairing-key-0123456789"
USERS = {"ann-pc": (111, "Ann Able"), "bob-pc": (222, "Bob Baker")}
PRACTICE, RACE = "Pit  Crew@7001#9001#0", "Pit  Crew@7001#9001#1"
STEP_TIMEOUT_S = 5.0


def drive_the_race(team: TeamSim) -> None:
    team.step(5)
    team.lap(96.0)  # practice lap 1
    team.step(SessionNum=1, SessionTime=3.0, LapCompleted=-1, LapLastLapTime=0.0)
    team.step(2, LapCompleted=0)  # the grid start crosses the line: no lap
    team.lap(91.0)
    team.lap(92.0)
    team.step(OnPitRoad=True, surface=2, Speed=20.0, PitSvFlags=0x1F, PitSvFuel=20.0)
    team.step(2)
    team.step(surface=1, PlayerCarInPitStall=True, Speed=0.0)
    for level in (38.0, 40.0, 42.0, 44.0):
        team.step(FuelLevel=level)
    team.step(2, surface=-1, OnPitRoad=False, PlayerCarInPitStall=False)  # Ann gets out
    team.swap_driver("bob-pc")
    team.step(2)
    team.step(3, surface=1, OnPitRoad=True, PlayerCarInPitStall=True)  # Bob is in
    team.step(Speed=4.0, surface=2, PlayerCarInPitStall=False, PitSvFlags=0)
    team.step(2, Speed=20.0)
    team.step(OnPitRoad=False, surface=3, Speed=45.0)
    team.lap(130.0)  # lap 3: the stop, the refuel and the swap
    team.lap(93.0)
    team.step(PlayerCarTowTime=40.0, surface=-1, Speed=0.0)  # off, towed
    team.step(3, PlayerCarTowTime=35.0)
    team.step(PlayerCarTowTime=0.0, surface=1, OnPitRoad=True, PlayerCarInPitStall=True)
    team.step(Speed=4.0, surface=2, PlayerCarInPitStall=False)
    team.step(OnPitRoad=False, surface=3, Speed=40.0)
    team.lap(140.0)
    team.step(3)


def test_a_team_race_lands_in_the_store_with_teamtactics_stints_laps_and_pit_records(
        tmp_path: Path, broker: BrokerHandle) -> None:
    device_id, pub, _ = provision(tmp_path / "box", "e2e-iracing-01")
    keys_dir.add(broker.keys_dir, device_id, pub.read_bytes())
    store = SqliteStore(tmp_path / "store.sqlite")
    bridge = Bridge(store, host=broker.host, port=broker.port, username=broker.bridge_username,
                    password=broker.bridge_password, prefix=broker.prefix,
                    client_id="bridge-e2e-iracing", group="e2e-iracing")
    bridge.start()
    cfg = config.with_overrides(
        config.load(None),
        device={"id": device_id, "project": broker.audience,
                "key_path": str(tmp_path / "box" / "device_key.pem")},
        capture={"f1_bind": "127.0.0.1", "f1_port": 0},
        relay={"enabled": True, "bind": "127.0.0.1", "port": 0, "pairing_key": KEY},
        outbox={"path": str(tmp_path / "box" / "outbox.sqlite")},
        uplink={"host": broker.host, "port": broker.port, "prefix": broker.prefix})
    try:
        assert bridge.subscribed.wait(10)
        gw = Gateway(cfg)
        box = gw.pipeline.iracing

        def seen_by_box(t: float) -> None:  # both shims delivered this step
            deadline = time.monotonic() + STEP_TIMEOUT_S
            while time.monotonic() < deadline:
                views = [box.shims.get(pc) for pc in USERS]
                if all(v is not None and v.values.get("SessionTime") == t for v in views):
                    return
                time.sleep(0.003)
            raise AssertionError(f"the box never saw session time {t}")

        async def run() -> tuple[bool, dict[str, Any]]:
            await gw.start()
            assert gw.relay is not None
            stop = asyncio.Event()
            team = TeamSim(tmp_path, USERS, "ann-pc")
            shims = [Shim(ShimConfig(box=f"127.0.0.1:{gw.relay.port}", pairing_key=KEY, id=pc,
                                     hz=250, send_hz=0, simulate=str(team.files[pc].path)))
                     for pc in USERS]
            tasks = [asyncio.create_task(s.run(stop)) for s in shims]
            await asyncio.to_thread(seen_by_box, team.car["SessionTime"])
            team.after_step = seen_by_box
            await asyncio.to_thread(drive_the_race, team)
            stop.set()
            await asyncio.gather(*tasks)
            gw.pipeline.commit()
            stats = {"shadowed": box.stats["shadowed"], "refused": dict(gw.relay.refused),
                     "dropped": dict(gw.pipeline.dropped)}
            return await gw.stop(drain_s=30), stats

        drained, stats = asyncio.run(asyncio.wait_for(run(), 120))
        assert drained, "outbox did not drain into the broker"
        assert stats["refused"] == {} and stats["dropped"] == {}, stats
        assert stats["shadowed"] > 0, "Bob's PC was sending while Ann drove"

        def lap_docs(coll: str) -> dict[int, dict[str, Any]]:
            return {int(d): body for d, body in store.docs(coll) if d.isdigit()}

        assert wait_for(lambda: len(lap_docs(RACE)) == 5 and len(lap_docs(PRACTICE)) == 1, 20), \
            (sorted(store.collections()), lap_docs(RACE).keys())
        race = lap_docs(RACE)
        assert [(race[n]["stint"], race[n]["lap_in_stint"]) for n in range(1, 6)] == [
            (1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
        assert [race[n]["detail"]["source"] for n in range(1, 6)] == ["ann-pc"] * 2 + ["bob-pc"] * 3
        assert [race[n]["lap_time_ms"] for n in range(1, 6)] == [91000, 92000, 130000, 93000,
                                                                 140000]
        assert race[1]["fuel_used"] == 3.0 and race[2]["fuel_used"] == 3.0
        assert race[3]["fuel_used"] is None, "a refuel lap has no (negative) consumption"
        assert race[3]["detail"]["fuel_added_l"] > 0 and race[3]["pit_in"]
        assert race[3]["detail"]["driver"] == "Bob Baker" and race[1]["detail"]["driver"] == "Ann Able"
        assert race[3]["detail"]["pit_sv_flags"] == 0x1F
        assert race[5]["detail"]["tow_time_s"] == 40.0
        # `state` is a hot document: the bridge coalesces it to about one write a second.
        assert wait_for(lambda: (store.get(RACE, "state") or {}).get("stint") == 3, 10)
        state = store.get(RACE, "state")
        assert state is not None and state["in_pit"] is False and state["pit_exit_s"] > 0
        info = store.get(RACE, "info")
        assert info is not None and info["session_type"] == "Race" and info["game"] == "iracing"
        events = [body for _, body in store.docs(RACE + "~events")]
        codes = sorted(e["code"] for e in events)
        assert codes.count("pit_exit") == 2 and codes.count("pit_entry") == 1
        assert codes.count("tow") == 1 and codes.count("driver_change") == 1
        assert codes.count("pit_stop") == 1
        exits = sorted((e for e in events if e["code"] == "pit_exit"),
                       key=lambda e: e["session_time_s"])
        assert exits[0]["detail"]["driver_swap"] is True and exits[0]["detail"]["stint"] == 2
        assert exits[1]["detail"].get("from_pit_box") is True, "the exit after a tow: no new stint"
    finally:
        bridge.stop()
        store.close()
        assert threading.active_count() < 50
