"""The pump's scheduling on a real outbox file: live laps first, the backlog drains behind in
order per rig (also after a failed send), and the pacing of the message-rate cap. The
publisher here is a recording stand-in for the broker seam (`Publisher.publish` returns at
once, or fails on purpose), so only the scheduling is measured; the caps themselves (size,
messages/s, in-flight window) are proven against the real broker in test_uplink_caps.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.errors import UplinkError
from gateway.outbox import Outbox
from gateway.uplink import wire
from gateway.uplink.pump import Pump
from tests.unit import records_factory as rf


class RecordingPublisher:
    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.connected.set()
        self.session = 1
        self.sent: list[tuple[float, str, list[wire.Envelope] | None]] = []

    async def publish(self, topic: str, payload: bytes) -> None:
        envs = wire.decode(payload) if "/events/" in topic else None
        self.sent.append((time.monotonic(), topic, envs))


def run_pump(box: Outbox, pub: RecordingPublisher, seconds: float, **kw: object) -> Pump:
    pump = Pump(box, pub, device="dev-1", prefix="/devices", wall_ns=time.time_ns, **kw)  # type: ignore[arg-type]

    async def go() -> None:
        task = asyncio.create_task(pump.run())
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            box.flush()
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    return pump


def test_live_laps_overtake_the_backlog_which_drains_in_order_per_rig(tmp_path: Path) -> None:
    clock = [0.0]
    box = Outbox(tmp_path / "o.sqlite", now=lambda: clock[0])
    for rig in ("rig-a", "rig-b"):  # an outage's backlog: 3000 samples per rig
        box.append([rf.sample(i, rig=rig, sid=f"{rig}@x#y#1") for i in range(3000)])
    box.flush()
    clock[0] = 100.0  # the uplink comes back much later
    pub = RecordingPublisher()
    pump = Pump(box, pub, device="dev-1", prefix="/devices", wall_ns=time.time_ns,
                batch_records=50, rate_per_s=50)

    committed_at: list[float] = []

    async def go() -> None:
        task = asyncio.create_task(pump.run())
        await asyncio.sleep(0.3)  # some of the backlog went (the burst, then 50/s)
        box.append([rf.lap(7, rig="rig-a", sid="rig-a@x#y#1")])
        box.flush()
        committed_at.append(time.monotonic())
        pump.wakeup.set()
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    kinds = [envs[0].kind for _, _, envs in pub.sent if envs]
    lap_at = kinds.index("lap")
    assert 0 < lap_at < len(kinds) - 1, "the lap went out while the backlog was still draining"
    sent_at = [t for t, _, envs in pub.sent if envs][lap_at]
    assert sent_at - committed_at[0] < 0.05  # it found a banked token: no queueing
    for rig in ("rig-a", "rig-b"):
        seqs = [s for _, _, envs in pub.sent for env in envs or () if env.rig == rig
                and env.kind == "sample" for s in env.seqs]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert max(sum(len(e.seqs) for e in envs) for _, _, envs in pub.sent if envs) == 50


def test_a_venues_lap_line_and_samples_leave_in_one_message_per_kind(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    pub = RecordingPublisher()
    rigs = [f"rig-{i:02}" for i in range(20)]
    for rig in rigs:
        box.append([rf.lap(3, rig=rig, sid=f"{rig}@x#y#1"), rf.sample(1, rig=rig, sid=f"{rig}@x#y#1"),
                    rf.sample(2, rig=rig, sid=f"{rig}@x#y#1")])
    run_pump(box, pub, 0.3)
    sent = [envs for _, _, envs in pub.sent if envs]
    assert [(envs[0].kind, len(envs)) for envs in sent] == [("lap", 20), ("sample", 20)]
    assert [env.rig for env in sent[1]] == rigs
    assert all(env.seqs == tuple(sorted(env.seqs)) and len(env.seqs) == 2 for env in sent[1])
    assert box.pending() == 0


def test_the_message_rate_stays_under_the_cap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    for rig in range(10):  # many small streams: one message each, as many as it may send
        box.append([rf.sample(i, rig=f"rig-{rig}", sid=f"rig-{rig}@x#y#1") for i in range(400)])
    box.flush()
    pub = RecordingPublisher()
    run_pump(box, pub, 1.5, batch_records=10, rate_per_s=40)
    times = [t for t, _, _ in pub.sent]
    assert len(times) > 40  # it did send for the whole time
    # a burst of 4, then 34/s (38 planned, 5% under): never more than 40 in any one second
    assert len(times) <= 4 + 36 * 1.5 + 2
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert worst <= 40


class FailingOnce(RecordingPublisher):
    """The broker seam refusing its first message (paho's queue full, say), then accepting."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[int] = []

    async def publish(self, topic: str, payload: bytes) -> None:
        if not self.refused:
            self.refused = [s for env in wire.decode(payload) for s in env.seqs]
            raise UplinkError("queue full")
        await super().publish(topic, payload)


def test_rows_of_a_failed_send_go_again_before_the_newer_rows_of_their_rig(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.sample(i) for i in range(20)])  # one rig: seq 1..20, all claimed at once
    box.flush()
    pub = FailingOnce()
    pump = run_pump(box, pub, 1.6, batch_records=5, inflight=1)  # the retry waits 1 s
    sent = [s for _, _, envs in pub.sent for env in envs or () for s in env.seqs]
    assert pub.refused == [1, 2, 3, 4, 5] and pump.failures == 1
    assert sent == list(range(1, 21)), "the released rows went out behind newer ones"


def test_state_goes_to_the_state_topic_no_more_than_every_ten_seconds(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    pub = RecordingPublisher()
    calls: list[int] = []

    def state() -> dict[str, object]:
        calls.append(1)
        return {"outbox_rows": box.pending()}

    run_pump(box, pub, 0.6, state=state, state_every_s=0.1)
    assert [topic for _, topic, _ in pub.sent] == ["/devices/dev-1/state"] and len(calls) == 1


def test_an_unreadable_outbox_row_is_dropped_and_the_rest_goes_out(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.sample(1)])
    box.flush()
    with box.conn:  # a row no build of ours wrote: a torn body from a bad card, say
        box.conn.execute("INSERT INTO outbox (kind, rig, session_id, priority, ts_ns, body)"
                         " VALUES ('sample', 'rig-a', ?, 5, 0, x'c1')", (rf.SID,))
    box.close()
    box = Outbox(tmp_path / "o.sqlite")  # found at the next start
    box.append([rf.sample(2)])
    box.flush()
    pub = RecordingPublisher()
    pump = run_pump(box, pub, 0.3)
    sent = [s for _, _, envs in pub.sent for env in envs or () for s in env.seqs]
    assert sent == [1, 3] and pump.corrupt == 1
    box.flush()
    assert box.pending() == 0 and box.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
