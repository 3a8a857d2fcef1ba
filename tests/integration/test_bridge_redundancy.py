"""Two bridge processes (`pitbox bridge run`) on one shared subscription; one is SIGKILLed
mid-stream. The survivor keeps writing its share; the killed one, restarted under the same
client id (what systemd's Restart= does), resumes its MQTT session and writes what the broker
held for it. In the end every record is in the store exactly once.

Mosquitto 2.0 keeps routing a dead member's share into its persistent session (measured:
it does not hand it to the survivor), hence the restart. Every process started here is
stopped here by PID; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cloud.store.base import Store
from gateway.uplink.wire import Envelope, encode
from tests.contract.firestore_fixtures import PROJECT, firestore_emulator, firestore_host
from tests.integration.test_bridge import Device, bridge_login, device, wait_for
from tests.unit import records_factory as rf

REPO = Path(__file__).resolve().parents[2]
SID = rf.SID
__all__ = ["device", "firestore_emulator", "firestore_host"]  # fixtures this module uses

MESSAGES = 240
SAMPLES_PER_MESSAGE = 20


class BridgeProcess:
    """`pitbox bridge run` as a child process, its log in a file."""

    def __init__(self, broker: Any, args: list[str], client_id: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        _, password = bridge_login(broker)
        self.log = log
        self.client_id = client_id
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pitbox", "bridge", "run", "--host", broker.host,
                 "--port", str(broker.port), "--client-id", client_id, "--stats-every", "0.5",
                 *args],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                env={**os.environ, **(env or {}), "PITBOX_BRIDGE_PASSWORD": password})
        self.start_offset = 0

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_subscribed(self) -> None:
        wait_for(f"{self.client_id} subscribed", lambda: self.text().count("subscribed to")
                 > self.start_offset or self.proc.poll() is not None, 30)
        assert self.proc.poll() is None, self.text()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def final_stats(self) -> dict[str, int]:
        found = re.findall(r"bridge: stopped \(([^)]*)\)", self.text())
        assert found, f"{self.client_id} logged no final counters:\n{self.text()[-2000:]}"
        return {k: int(v) for k, v in (kv.split("=") for kv in found[-1].split(", "))}


def plan() -> list[tuple[str, list[int]]]:
    """(kind, seqs) per message: samples; every 10th a lap; two states in every 10, at an
    even and an odd position, so both instances get some (Mosquitto alternates)."""
    out, seq = [], 0
    for m in range(MESSAGES):
        n = 1 if m % 10 in (4, 7, 9) else SAMPLES_PER_MESSAGE
        kind = {4: "state", 7: "state", 9: "lap"}.get(m % 10, "sample")
        out.append((kind, list(range(seq + 1, seq + 1 + n))))
        seq += n
    return out


def messages(device: Device) -> list[tuple[str, bytes]]:
    out = []
    for m, (kind, seqs) in enumerate(plan()):
        if kind == "lap":
            recs: tuple[tuple[int, Any], ...] = ((seqs[0], rf.lap(m)),)
        elif kind == "state":
            recs = ((seqs[0], replace(rf.state(2), stint_laps=m)),)
        else:
            recs = tuple((s, rf.sample(s)) for s in seqs)
        out.append((kind, encode(Envelope(device.id, "rig-a", SID, kind, 1, recs))))
    return out


def expected_docs(device: Device) -> tuple[set[str], set[str], int]:
    """Sample doc ids, the session collection's doc ids, the last state's seq."""
    samples = {f"{device.id}-{s}" for kind, seqs in plan() if kind == "sample" for s in seqs}
    laps = {str(m) for m, (kind, _) in enumerate(plan()) if kind == "lap"}
    last_state = max(seqs[0] for kind, seqs in plan() if kind == "state")
    return samples, laps | {"state"}, last_state


def stored(store: Store) -> int:
    return len(store.docs(SID + "~samples")) + len(store.docs(SID))


@pytest.fixture
def bridges() -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for b in started:
        b.kill(signal.SIGTERM)


@pytest.fixture(params=["sqlite", "firestore"])
def store_and_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[
        tuple[Store, list[str]]]:
    """A store for the test to read, and the `bridge run` options that name the same one."""
    s: Store
    if request.param == "sqlite":
        from cloud.store.sqlite import SqliteStore
        s = SqliteStore(tmp_path / "store.db")
        args = ["--store", "sqlite", "--db", str(tmp_path / "store.db")]
    else:
        request.getfixturevalue("firestore_host")  # emptied; bridges inherit the env var
        from cloud.store.firestore import FirestoreStore
        s = FirestoreStore(PROJECT)
        args = ["--store", "firestore", "--project", PROJECT]
    yield s, args
    s.close()


def test_a_bridge_killed_mid_stream_loses_nothing_and_duplicates_nothing(
        broker: Any, device: Device, tmp_path: Path, bridges: list[BridgeProcess],
        store_and_args: tuple[Store, list[str]]) -> None:
    store, store_args = store_and_args
    group = f"redundant-{uuid.uuid4().hex[:8]}"
    args = [*store_args, "--group", group]
    a = BridgeProcess(broker, args, f"{group}-a", tmp_path / "a.log")
    b = BridgeProcess(broker, args, f"{group}-b", tmp_path / "b.log")
    bridges += [a, b]
    a.wait_subscribed()
    b.wait_subscribed()
    payloads = messages(device)
    samples, session_docs, last_state = expected_docs(device)
    total = len(samples) + len(session_docs)

    def publish_all() -> None:
        for kind, payload in payloads:
            device.publish(kind, payload)
            time.sleep(0.01)

    publisher = threading.Thread(target=publish_all, name="device")
    publisher.start()
    try:
        wait_for("a quarter of the records stored", lambda: stored(store) >= total // 4, 30)
        assert a.kill() == -signal.SIGKILL
        at_kill = stored(store)
        assert at_kill < total, "the stream ended before the kill: not mid-stream"
    finally:
        publisher.join(60)
    assert not publisher.is_alive()
    wait_for("the survivor writing on", lambda: stored(store) > at_kill, 30)

    a2 = BridgeProcess(broker, args, a.client_id, a.log)  # same client id: same session
    a2.start_offset = a.text().count("subscribed to")
    bridges.append(a2)
    a2.wait_subscribed()
    try:
        wait_for("every record in the store", lambda: stored(store) == total, 30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {stored(store)} of {total}; the bridges' logs:\n"
                             + "\n".join(p.text()[-3000:] for p in (a2, b))) from None
    time.sleep(0.5)  # let anything still in flight land before counting
    sample_docs = store.docs(SID + "~samples")
    assert {d for d, _ in sample_docs} == samples and len(sample_docs) == len(samples)
    assert all(d == f"{device.id}-{doc['seq']}" for d, doc in sample_docs)
    assert {d for d, _ in store.docs(SID)} == session_docs
    state = store.get(SID, "state")  # both instances wrote states: the newest one stands
    assert state is not None and state["seq"] == last_state
    assert store.docs("deadletters") == []
    assert "(session resumed)" in a2.text()  # it came back to what the broker held for it

    for p in (b, a2):
        assert p.kill(signal.SIGTERM) == 0
    sb, sa2 = b.final_stats(), a2.final_stats()
    assert sb["acked"] > 0 and sa2["acked"] > 0, (sb, sa2)  # the load was shared
    assert sb.get("dead_letters", 0) == 0 and sa2.get("dead_letters", 0) == 0
