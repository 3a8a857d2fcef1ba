"""The uplink's limits on the real path: the box's own config, outbox, pump and paho client
against Mosquitto with our auth plugin, measured where the broker's side of the wire is.

- every message fits the size cap, however many records wait (the pump's own batching);
- no more than the configured messages/s go to the broker in any one second (timed on the
  wire, at a relay between box and broker that runs in a process of its own, and every one of
  them reaches a subscriber);
- while the broker is frozen (SIGSTOP) no more QoS 1 publishes are unacknowledged on the
  wire than the configured in-flight window, and all of them arrive once it thaws;
- a broker that keeps the connection but stops acknowledging gets a reconnect after the
  configured ack timeout, and everything arrives.
"""

from __future__ import annotations

import asyncio
import bisect
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cloud.broker.run import Broker
from gateway.config import Config
from gateway.outbox import Outbox
from gateway.uplink.mqtt import MqttPublisher
from gateway.uplink.pump import Pump
from gateway.uplink.setup import build_uplink
from tests.faults.harness import Recorder, box_config, wait_until
from tests.integration.broker_fixtures import BrokerHandle
from tests.unit import records_factory as rf

PUBLISH, PUBACK = 3, 4


def sid(rig: int) -> str:
    return f"rig-{rig}@f1-2024#silverstone#{rig:016x}"


class MqttWire:
    """A TCP relay between one MQTT client and the broker that reads the packets going by:
    QoS 1 PUBLISH ids from the client, PUBACK ids from the broker. `unacked` is what the
    broker has been sent and not yet acknowledged; `most_unacked` its peak; `publish_ns` when
    each PUBLISH (any QoS) from the client was read here (monotonic ns). With
    `drop_pubacks_after`, the first connection's PUBACKs after that many are never passed on
    (a broker that answers pings but acknowledges nothing); later connections are left alone."""

    def __init__(self, host: str, port: int, drop_pubacks_after: int | None = None) -> None:
        self.upstream = (host, port)
        self.drop_pubacks_after = drop_pubacks_after
        self.connections = 0
        self.dropped_pubacks = 0
        self.lock = threading.Lock()
        self.unacked: set[int] = set()
        self.most_unacked = 0
        self.publishes = 0
        self.publish_ns: list[int] = []
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            broker = socket.create_connection(self.upstream, timeout=5)
            broker.settimeout(None)
            self._socks += [client, broker]
            self.connections += 1
            for src, dst, up in ((client, broker, True), (broker, client, False)):
                t = threading.Thread(target=self._relay, args=(src, dst, up, self.connections),
                                     daemon=True)
                t.start()
                self._threads.append(t)

    def _relay(self, src: socket.socket, dst: socket.socket, up: bool, nth: int) -> None:
        buf = b""
        passed_pubacks = 0
        try:
            while chunk := src.recv(65536):
                out: list[bytes] = []
                buf = self._read_packets(buf + chunk, up, time.monotonic_ns(), out)
                if not up and nth == 1 and self.drop_pubacks_after is not None:
                    kept = []
                    for packet in out:
                        if packet[0] >> 4 == PUBACK:
                            passed_pubacks += 1
                            if passed_pubacks > self.drop_pubacks_after:
                                self.dropped_pubacks += 1
                                continue
                        kept.append(packet)
                    out = kept
                dst.sendall(b"".join(out))  # after counting: a PUBACK cannot beat its PUBLISH
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _read_packets(self, buf: bytes, up: bool, at_ns: int, out: list[bytes]) -> bytes:
        """Count the whole packets in `buf` (read at `at_ns`) and add them to `out`; return
        the incomplete tail."""
        while len(buf) >= 2:
            length, shift, i = 0, 0, 1
            while i < len(buf) and i <= 4:
                length |= (buf[i] & 0x7F) << shift
                shift += 7
                i += 1
                if not buf[i - 1] & 0x80:
                    break
            else:
                return buf  # the length itself is not all here yet
            if len(buf) < i + length:
                return buf
            kind, body = buf[0] >> 4, buf[i:i + length]
            with self.lock:
                if up and kind == PUBLISH:
                    self.publish_ns.append(at_ns)
                if up and kind == PUBLISH and (buf[0] >> 1) & 3:
                    topic_len = int.from_bytes(body[:2], "big")
                    self.unacked.add(int.from_bytes(body[2 + topic_len:4 + topic_len], "big"))
                    self.publishes += 1
                elif not up and kind == PUBACK:
                    self.unacked.discard(int.from_bytes(body[:2], "big"))
                self.most_unacked = max(self.most_unacked, len(self.unacked))
            out.append(buf[:i + length])
            buf = buf[i + length:]
        return buf

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes a relay blocked in recv
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(timeout=5)


def _serve_wire(host: str, port: int, conn: Connection) -> None:
    """An MqttWire in the process `WireProcess` starts: says its port, then answers each
    "publish_ns" with the times so far, until told anything else or the parent is gone."""
    wire = MqttWire(host, port)
    try:
        conn.send(wire.port)
        while conn.poll(60) and conn.recv() == "publish_ns":  # bounded: a silent parent ends it
            with wire.lock:
                conn.send(list(wire.publish_ns))
    except (EOFError, OSError):
        pass
    finally:
        wire.close()
        conn.close()


class WireProcess:
    """An MqttWire in a process of its own, for timing: in the test's process it shares the GIL
    with the pump's loop and paho's thread, and a read delayed ~50 ms by them bunches PUBLISHes
    into a window they were not sent in. Its own process reads each one when the kernel hands
    it over. (Times are CLOCK_MONOTONIC, the same in every process.)"""

    def __init__(self, host: str, port: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve_wire, args=(host, port, child),
                                   name="mqtt-wire", daemon=True)
        self.process.start()
        child.close()
        if not self._conn.poll(30):
            self.close()
            raise AssertionError("the relay's process never said its port")
        self.port = int(self._conn.recv())

    def publish_ns(self) -> list[int]:
        """When each PUBLISH from the client was read at the relay (monotonic ns), so far."""
        self._conn.send("publish_ns")
        assert self._conn.poll(10), "the relay's process does not answer"
        times: list[int] = self._conn.recv()
        return times

    def close(self) -> None:
        """Stop the relay (closes its sockets), by PID if it does not end by itself."""
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._conn.close()
        self.process.join(timeout=10)
        if self.process.is_alive() and self.process.pid is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.join(timeout=5)


async def run_until(pump: Pump, publisher: MqttPublisher, done: object, timeout_s: float) -> None:
    """Connect, run the pump until `done()` says so (bounded), then stop both."""
    publisher.connect()
    task = asyncio.create_task(pump.run())
    try:
        await asyncio.wait_for(publisher.connected.wait(), 10)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while loop.time() < end and not done():  # type: ignore[operator]
            pump.outbox.flush()
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        publisher.close()


def test_every_message_fits_the_size_cap_the_pump_is_given(broker: BrokerHandle,
                                                           tmp_path: Path) -> None:
    device_id = f"cap-{uuid.uuid4().hex[:8]}"
    cfg = box_config(tmp_path, broker.host, broker.port, device_id, broker.keys_dir,
                     audience=broker.audience)
    box = Outbox(tmp_path / "o.sqlite")
    for rig in range(6):
        box.append([rf.sample(i, rig=f"rig-{rig}", sid=sid(rig)) for i in range(150)]
                   + [rf.lap(n, rig=f"rig-{rig}", sid=sid(rig)) for n in range(1, 6)])
    box.flush()
    total = box.pending()
    publisher, _ = build_uplink(cfg, Path(cfg.device.key_path).read_bytes(), box)
    max_bytes = 4096  # 500 records a message would be ~70 KB: the byte cap must split them
    pump = Pump(box, publisher, device=device_id, prefix="/devices", wall_ns=time.time_ns,
                batch_records=500, max_bytes=max_bytes)
    rec = Recorder(broker.host, broker.port, broker.bridge_username, broker.bridge_password)
    try:
        asyncio.run(run_until(pump, publisher, lambda: box.pending() == 0, 20))
        assert wait_until(lambda: len(set(rec.seqs())) == total, 10)
        with rec.lock:
            sizes = [len(p) for t, p, _ in rec.messages if f"/{device_id}/events/" in t]
    finally:
        rec.close()
        box.close()
    assert max(sizes) <= max_bytes, f"{sum(s > max_bytes for s in sizes)} messages over the cap"
    assert max(sizes) > max_bytes * 0.8  # messages are filled up to it, not just small
    print(f"size cap: {len(sizes)} messages of {min(sizes)}..{max(sizes)} bytes (cap {max_bytes})")
    assert sorted(rec.seqs()) == list(range(1, total + 1))


def most_in_one_second(times_ns: list[int]) -> int:
    """The most of `times_ns` (sorted) in any one-second window [t, t + 1 s)."""
    return max((bisect.bisect_left(times_ns, t + 10**9) - i for i, t in enumerate(times_ns)),
               default=0)


def test_the_box_never_sends_more_than_the_configured_messages_per_second(
        broker: BrokerHandle, tmp_path: Path) -> None:
    """Timed where the box's packets leave for the broker (the relay), not at a subscriber:
    the broker's and the subscriber's own delays would bunch arrivals, and a subscriber in this
    process shares the GIL with the pump. The relay runs in a process of its own (WireProcess),
    so only the kernel's wake-up delay (well under a ms when a core is free) can bunch what it
    times; the pump plans 5% under the cap (~50 ms of bunching)."""
    device_id = f"rate-{uuid.uuid4().hex[:8]}"
    wire_ = WireProcess(broker.host, broker.port)
    cfg = box_config(tmp_path, "127.0.0.1", wire_.port, device_id, broker.keys_dir,
                     audience=broker.audience, uplink={"batch_records": 1})
    cap = cfg.uplink.messages_per_s
    assert cap == 100  # the shipped default, Cloud IoT Core's limit
    box = Outbox(tmp_path / "o.sqlite")
    for rig in range(10):  # one record per message: the message rate is the only limit
        box.append([rf.sample(i, rig=f"rig-{rig}", sid=sid(rig)) for i in range(25)])
    box.flush()
    publisher, pump = build_uplink(cfg, Path(cfg.device.key_path).read_bytes(), box)
    rec = Recorder(broker.host, broker.port, broker.bridge_username, broker.bridge_password)

    def received() -> int:  # events and the box's state: every message counts against the cap
        with rec.lock:
            return sum(1 for t, _, _ in rec.messages if f"/{device_id}/" in t)

    try:
        asyncio.run(run_until(pump, publisher, lambda: box.pending() == 0, 20))
        assert wait_until(lambda: len(set(rec.seqs())) == 250, 10)
        sent_ns = sorted(wire_.publish_ns())
        assert wait_until(lambda: received() == len(sent_ns), 10)  # all went through
    finally:
        rec.close()
        wire_.close()
        box.close()
    worst = most_in_one_second(sent_ns)
    span_s = (sent_ns[-1] - sent_ns[0]) / 1e9
    assert worst <= cap, f"{worst} messages sent within one second (cap {cap:.0f})"
    assert worst >= 0.8 * cap  # the cap was what held it back: the test measured something
    assert len(sent_ns) >= 251 and span_s > 2.0  # over 2 s at the cap
    print(f"rate cap: {len(sent_ns)} messages sent in {span_s:.1f} s, at most {worst} "
          f"in any one second (cap {cap:.0f})")


def box_of_150_samples(tmp_path: Path, port: int, device: str, keys: Path,
                       **uplink: Any) -> tuple[Config, Outbox, MqttPublisher, Pump]:
    """A box whose outbox holds 150 samples of 4 rigs, sending to 127.0.0.1:`port` (a relay
    in front of a broker with audience "caps-aud")."""
    cfg = box_config(tmp_path, "127.0.0.1", port, device, keys, audience="caps-aud",
                     uplink=uplink)
    box = Outbox(tmp_path / "o.sqlite")
    box.append([rf.sample(i, rig=f"rig-{i % 4}", sid=sid(i % 4)) for i in range(150)])
    box.flush()
    publisher, pump = build_uplink(cfg, Path(cfg.device.key_path).read_bytes(), box)
    return cfg, box, publisher, pump


def test_a_frozen_broker_never_has_more_unacked_publishes_than_the_window(
        tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    with Broker(tmp_path / "broker", audience="caps-aud", keys_dir=keys,
                accounts={"bridge": "caps-pw"}) as b:
        wire_ = MqttWire(b.host, b.port)
        cfg, box, publisher, pump = box_of_150_samples(tmp_path, wire_.port, "caps-frozen", keys,
                                                       inflight=5, batch_records=1)
        window = cfg.uplink.inflight
        rec = Recorder(b.host, b.port, "bridge", "caps-pw")
        frozen: dict[str, int] = {}

        def freeze_once_flowing() -> None:  # a thread of its own: the box's loop runs on
            assert b.pid is not None
            if not wait_until(lambda: pump.acked_messages >= 20, 15):
                return
            os.kill(b.pid, signal.SIGSTOP)
            try:
                time.sleep(1.0)  # the box keeps sending until its window is full
                with wire_.lock:
                    frozen.update(unacked=len(wire_.unacked), publishes=wire_.publishes)
                time.sleep(0.3)
                with wire_.lock:
                    frozen["publishes_later"] = wire_.publishes
            finally:
                os.kill(b.pid, signal.SIGCONT)

        freezer = threading.Thread(target=freeze_once_flowing, daemon=True)
        freezer.start()
        try:
            asyncio.run(run_until(pump, publisher, lambda: not freezer.is_alive()
                                  and box.pending() == 0, 30))
            assert wait_until(lambda: len(set(rec.seqs())) == 150, 10)
        finally:
            freezer.join(timeout=20)  # it thaws the broker in its own finally
            rec.close()
            wire_.close()
            box.close()
    assert frozen, "the broker was never frozen"
    # Frozen: the window filled, and not one publish more went out while it stayed full.
    assert frozen["unacked"] == window
    assert frozen["publishes_later"] == frozen["publishes"]
    assert wire_.most_unacked <= window, f"{wire_.most_unacked} unacked (window {window})"
    assert sorted(set(rec.seqs())) == list(range(1, 151))  # and nothing lost after the thaw
    print(f"window: {frozen['unacked']} unacked while frozen, peak {wire_.most_unacked} "
          f"(window {window}), {wire_.publishes} publishes on the wire")


def test_a_broker_that_stops_acknowledging_gets_a_reconnect_and_nothing_is_lost(
        tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    with Broker(tmp_path / "broker", audience="caps-aud", keys_dir=keys,
                accounts={"bridge": "caps-pw"}) as b:
        wire_ = MqttWire(b.host, b.port, drop_pubacks_after=10)
        _, box, publisher, pump = box_of_150_samples(tmp_path, wire_.port, "caps-noack", keys,
                                                     inflight=5, batch_records=1, ack_timeout_s=2)
        rec = Recorder(b.host, b.port, "bridge", "caps-pw")
        try:
            asyncio.run(run_until(pump, publisher, lambda: box.pending() == 0, 30))
            assert wait_until(lambda: len(set(rec.seqs())) == 150, 10)
        finally:
            rec.close()
            wire_.close()
            box.close()
    assert wire_.dropped_pubacks >= 1, "the relay never held back an acknowledgement"
    # One stall, noticed after the timeout: one reconnect, not a loop of them.
    assert publisher.stats["ack_timeouts"] == 1 and publisher.stats["connects"] == 2
    assert wire_.connections == 2
    assert sorted(set(rec.seqs())) == list(range(1, 151))
