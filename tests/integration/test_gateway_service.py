"""`pitbox gateway run` as systemd runs it: a real process, a real $NOTIFY_SOCKET, SIGTERM.
And the watchdog: a gateway on a real notify socket stops sending WATCHDOG=1 when a part of
its data path dies or stalls — a closed capture socket, an uplink pump stuck on sends a broker
(played on a loopback socket) never acknowledges — and starts again when the pump moves.

The watchdog tests assert on the order of what reaches the socket, not on how many pings fit
in a short window (a loaded CI runner stalls the loop): the test drops `MARK=` lines into the
same socket from the gateway's own thread, so they land in order with the gateway's lines;
pings must stop after the "starving" status until the cause is removed, and resume after; and
"no ping while starving" is checked over a count of the watchdog's verdicts, not over time."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.cli import provision
from gateway import config
from gateway.errors import OutboxError, OutboxFullError
from gateway.outbox import Outbox
from gateway.recorder import iter_datagrams
from gateway.service import Gateway
from gateway.status.sdnotify import notify
from gateway.status.watchdog import Progress, Watchdog
from pitbox.demo import SAMPLE
from tests.unit import records_factory as rf

PING_USEC = 200_000  # WatchdogSec=0.2 s: the gateway pings every 0.1 s
STARVING = "STATUS=watchdog starving: "
WAIT_S = 10.0  # a generous bound for anything expected within a second on an idle machine


def test_gateway_tells_systemd_ready_feeds_the_watchdog_and_stops_cleanly(tmp_path: Path) -> None:
    cfg = box_config(tmp_path, "svc-test-01")
    notify_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(10)
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "gateway", "run", "--config", str(cfg)],
                            env={**os.environ, "NOTIFY_SOCKET": notify_path},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        got: list[str] = []
        deadline = time.monotonic() + 15
        while "WATCHDOG=1" not in got and time.monotonic() < deadline:
            got.append(sock.recv(256).decode())
        assert got[0] == "READY=1"
        assert "WATCHDOG=1" in got
        proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in got and time.monotonic() < deadline + 10:
            got.append(sock.recv(256).decode())
        assert "STOPPING=1" in got
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


def test_the_state_message_reports_what_was_dropped_and_why(tmp_path: Path) -> None:
    provision(tmp_path, "svc-test-02")
    cfg = tmp_path / "pitbox.toml"
    cfg.write_text(f"""
[device]
id = "svc-test-02"
key_path = "{tmp_path / 'device_key.pem'}"
[outbox]
path = "{tmp_path / 'outbox.sqlite'}"
[uplink]
host = "127.0.0.1"
port = 9
""")
    gw = Gateway(config.load(cfg), live=False)
    try:
        for junk in (b"\x00" * 5, b"\xe9\x07" + b"\x00" * 40):
            gw.pipeline.on_datagram(junk, "10.0.0.9:20777", 1, 1)
        state = gw._uplink_state()
        assert state["datagrams"] == 2
        assert state["dropped"] == {"short_header": 1, "bad_length": 1}
    finally:
        gw.outbox.close()


def box_config(tmp_path: Path, device_id: str, *, uplink_port: int = 9, extra: str = "") -> Path:
    provision(tmp_path, device_id)
    cfg = tmp_path / "pitbox.toml"
    cfg.write_text(f"""
[device]
id = "{device_id}"
key_path = "{tmp_path / 'device_key.pem'}"
[capture]
f1_bind = "127.0.0.1"
f1_port = 0
idle_after_s = 0.5
[outbox]
path = "{tmp_path / 'outbox.sqlite'}"
[uplink]
host = "127.0.0.1"
port = {uplink_port}
{extra}
""")
    return cfg


class Systemd:
    """systemd's side of $NOTIFY_SOCKET: a datagram socket read by a thread as fast as lines
    come (a gateway that pings too often must not block on a full queue in this test)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.lines: list[tuple[float, str]] = []  # (monotonic time, line)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                line = self.sock.recv(256).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.append((time.monotonic(), line))

    async def mark(self, name: str) -> None:
        """Drop `MARK=name` into the socket and wait until it is read. Sent from the loop's
        thread, like every line of the gateway's, so it lands in order with them."""
        assert notify(f"MARK={name}")
        for _ in range(int(WAIT_S / 0.01)):  # bounded
            if any(line == f"MARK={name}" for _, line in list(self.lines)):
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"MARK={name} never arrived")

    def after(self, name: str) -> list[str]:
        """Every line after `MARK=name`, in order (none before the mark has arrived)."""
        lines = [line for _, line in list(self.lines)]
        mark = f"MARK={name}"
        return lines[lines.index(mark) + 1:] if mark in lines else []

    async def first(self, prefix: str, *, after: str) -> str:
        """The first line starting with `prefix` after `MARK=after`, waited for up to WAIT_S;
        "" if none came."""
        for _ in range(int(WAIT_S / 0.02)):  # bounded
            found = next((ln for ln in self.after(after) if ln.startswith(prefix)), None)
            if found is not None:
                return found
            await asyncio.sleep(0.02)
        return ""

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Systemd]:
    """$NOTIFY_SOCKET and $WATCHDOG_USEC, as systemd sets them for a Type=notify service."""
    path = str(tmp_path / "notify.sock")
    reader = Systemd(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", str(PING_USEC))
    try:
        yield reader
    finally:
        reader.close()


def test_a_reader_that_never_reads_cannot_block_the_gateway(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.status.sdnotify import SEND_TIMEOUT_S, notify

    path = str(tmp_path / "busy.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as busy:
        busy.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        sent = 0
        for _ in range(10_000):  # bounded: until the reader's queue is full
            if not notify("WATCHDOG=1"):
                break
            sent += 1
        start = time.monotonic()
        assert notify("WATCHDOG=1") is False  # full: dropped after a short wait
        assert time.monotonic() - start < SEND_TIMEOUT_S + 0.5
    assert 0 < sent < 10_000


class CountingWatchdog(Watchdog):
    """The gateway's own judge, counting its verdicts: each is a chance to ping, so "no ping
    for N verdicts" holds however slowly a loaded machine turns the loop."""

    verdicts = 0

    def check(self, p: Progress) -> str:
        self.verdicts += 1
        return super().check(p)

    async def more_verdicts(self, n: int) -> None:
        goal = self.verdicts + n
        for _ in range(int(WAIT_S / 0.02)):  # bounded
            if self.verdicts >= goal:
                return
            await asyncio.sleep(0.02)
        pytest.fail(f"the gateway judged its data path {n - goal + self.verdicts} times in "
                    f"{WAIT_S} s, not {n}")


def starving_span(lines: list[str], until: str) -> list[str]:
    """From the first "starving" status line in `lines` up to `MARK=until`."""
    start = next(i for i, line in enumerate(lines) if line.startswith(STARVING))
    return lines[start:lines.index(f"MARK={until}")]


def test_a_closed_capture_socket_stops_the_watchdog(tmp_path: Path, systemd: Systemd) -> None:
    gw = Gateway(config.load(box_config(tmp_path, "wd-test-01")))
    gw.watchdog = judge = CountingWatchdog()

    async def scenario() -> tuple[str, str, list[str]]:
        await gw.start()
        try:
            await systemd.mark("idle")
            fed = await systemd.first("WATCHDOG=1", after="idle")
            gw.capture.close()  # every capture socket closed, as a fatal socket error leaves it
            await systemd.mark("closed")
            why = await systemd.first(STARVING, after="closed")
            await judge.more_verdicts(8)  # 8 chances to ping: systemd would have killed it
            await systemd.mark("end")
            return fed, why, systemd.after("closed")
        finally:
            await gw.stop()

    fed, why, after = asyncio.run(scenario())
    assert fed == "WATCHDOG=1"  # idle (no rig, no broker) is fine: fed
    assert why == STARVING + "a capture socket is closed", after
    assert "WATCHDOG=1" not in starving_span(after, "end"), after


def test_the_outbox_tells_a_full_disk_from_a_failing_one_by_the_error_type(
        tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    conn = outbox.conn
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
        outbox.append([rf.sample(i) for i in range(2000)])
        with pytest.raises(OutboxFullError, match="the disk is full"):
            outbox.flush()
        conn.execute("PRAGMA max_page_count = 4294967294")
        conn.execute("PRAGMA query_only = ON")  # failing as a read-only card does
        with pytest.raises(OutboxError) as failing:
            outbox.flush()
        assert not isinstance(failing.value, OutboxFullError), failing.value
        conn.execute("PRAGMA query_only = OFF")
        assert outbox.flush() == 2000  # kept in memory through both: nothing lost
    finally:
        outbox.close()


def test_failing_commits_starve_the_watchdog_after_a_grace_but_a_full_disk_never(
        tmp_path: Path, systemd: Systemd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pitbox.gateway")
    gw = Gateway(config.load(box_config(tmp_path, "wd-test-03")))
    grace_s = 0.5  # production: 60 s
    gw.watchdog = judge = CountingWatchdog(commit_grace_s=grace_s)
    conn = gw.outbox.conn

    async def scenario() -> tuple[str, str, list[str], str]:
        await gw.start()
        try:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
            gw.outbox.append([rf.sample(i) for i in range(2000)])
            for _ in range(int(WAIT_S / 0.02)):  # bounded: until a commit has failed
                if gw.commit_failed:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(2 * grace_s)
            await judge.more_verdicts(3)
            await systemd.mark("full past the grace")
            fed = await systemd.first("WATCHDOG=1", after="full past the grace")
            since = gw.commit_failing_since
            assert gw.commit_failed and since is not None
            assert time.monotonic() - since > grace_s
            conn.execute("PRAGMA max_page_count = 4294967294")
            conn.execute("PRAGMA query_only = ON")  # now failing as a read-only card does
            await systemd.mark("read-only")
            why = await systemd.first(STARVING, after="read-only")
            await judge.more_verdicts(5)
            conn.execute("PRAGMA query_only = OFF")
            await systemd.mark("writable")
            again = await systemd.first("WATCHDOG=1", after="writable")
            return fed, why, systemd.after("read-only"), again
        finally:
            await gw.stop()

    fed, why, read_only, again = asyncio.run(scenario())
    assert fed == "WATCHDOG=1"  # full for twice the grace, still fed
    lines = [line for _, line in systemd.lines]
    assert not any(ln.startswith(STARVING) for ln in lines[:lines.index("MARK=read-only")])
    assert why.startswith(STARVING + "outbox commits failing for"), read_only
    assert "WATCHDOG=1" not in starving_span(read_only, "writable"), read_only
    assert again == "WATCHDOG=1" and not gw.commit_failed  # written, fed again
    assert re.search(r"outbox commits work again after \d+ s; nothing was lost", caplog.text)


def test_the_log_times_a_full_disk_that_turns_into_an_io_error_as_one_episode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The lines count from the first failed commit to the first good one, whatever the kind
    of failure; the watchdog's per-kind clock (its grace) restarts at the I/O error. Each line
    is stamped with the monotonic time it is said at (a record's `created` is wall time)."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr("gateway.service.COMMIT_REPORT_EVERY_S", 0.25)  # production: a minute
    full_s, read_only_s = 2.0, 1.0  # the full part alone outlasts the whole I/O part + 1 s
    gw = Gateway(config.load(box_config(tmp_path, "wd-test-04")))
    conn = gw.outbox.conn
    at: dict[str, float] = {}

    async def until(what: str, done: Callable[[], bool]) -> None:
        for _ in range(int(WAIT_S / 0.01)):  # bounded
            if done():
                at[what] = time.monotonic()
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"never {what}")

    async def scenario() -> None:
        await gw.start()
        try:
            at["full"] = time.monotonic()
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
            gw.outbox.append([rf.sample(i) for i in range(2000)])
            await until("failing", lambda: gw.commit_failed)
            at["since"] = gw.commit_failing_since or 0.0
            await asyncio.sleep(full_s)
            conn.execute("PRAGMA max_page_count = 4294967294")
            conn.execute("PRAGMA query_only = ON")  # now failing as a read-only card does
            at["read-only"] = time.monotonic()
            await asyncio.sleep(read_only_s)
            assert gw.commit_failing_since == at["since"]  # one episode
            conn.execute("PRAGMA query_only = OFF")
            at["writable"] = time.monotonic()
            await until("working", lambda: not gw.commit_failed)
        finally:
            await gw.stop()

    def stamp(record: logging.LogRecord) -> bool:
        record.mono_s = time.monotonic()
        return True

    caplog.set_level(logging.INFO, "pitbox.gateway")
    caplog.handler.addFilter(stamp)
    asyncio.run(scenario())
    said = [(r.__dict__["mono_s"], r.getMessage()) for r in caplog.records
            if r.name == "pitbox.gateway"]
    start = at["since"]
    assert at["full"] <= start <= at["failing"]
    errors = [(t, line) for t, line in said if line.startswith("outbox commit failed")]
    assert "failing for" not in errors[0][1] and errors[0][0] == pytest.approx(start, abs=0.05)
    io_errors = [(t, line) for t, line in errors if "(the disk is full)" not in line]
    assert io_errors and all(t > at["read-only"] for t, _ in io_errors), errors
    for t, line in errors[1:]:  # each says how long the episode has lasted when it is said
        found = re.search(r"\(failing for (\d+) s; capture goes on\)", line)
        assert found and abs(int(found.group(1)) - (t - start)) <= 0.55, (t - start, line)
    assert max(int(re.findall(r"failing for (\d+) s", line)[0])  # not the I/O part's
               for _, line in io_errors if "failing for" in line) >= full_s
    (again,) = [(t, line) for t, line in said if "work again" in line]
    took = re.fullmatch(r"outbox commits work again after (\d+) s; nothing was lost", again[1])
    assert took and at["writable"] <= again[0] <= at["working"], again
    assert abs(int(took.group(1)) - (again[0] - start)) <= 0.55, (again[0] - start, again[1])
    assert int(took.group(1)) >= full_s + read_only_s - 0.5  # the whole episode


class SilentBroker:
    """Plays an MQTT 3.1.1 broker on a loopback socket: it accepts the box, answers its
    subscriptions and pings, and acknowledges no PUBLISH until `ack()` is called."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[bytes] = []  # packet ids of unacknowledged QoS 1 publishes
        self.connected = threading.Event()
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._acking = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(20)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self._conn = conn
        with conn:
            for _ in range(100_000):  # bounded: one packet per turn
                packet = self._read(conn)
                if packet is None:
                    return
                self._answer(*packet)

    @staticmethod
    def _read(conn: socket.socket) -> tuple[int, bytes] | None:
        def exactly(n: int) -> bytes | None:
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    return None
                data += chunk
            return data

        try:
            head = exactly(1)
            length, shift = 0, 0
            for _ in range(4):
                byte = exactly(1)
                if head is None or byte is None:
                    return None
                length |= (byte[0] & 0x7F) << shift
                shift += 7
                if not byte[0] & 0x80:
                    break
            body = exactly(length) if length else b""
        except OSError:
            return None
        return (head[0], body) if head is not None and body is not None else None

    def _answer(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == 1:  # CONNECT: accepted
            self._send(b"\x20\x02\x00\x00")
            self.connected.set()
        elif kind == 8:  # SUBSCRIBE: granted at QoS 1, one code per topic filter
            topics, at = 0, 2
            while at < len(body):
                at += 2 + int.from_bytes(body[at:at + 2], "big") + 1
                topics += 1
            self._send(bytes([0x90, 2 + topics]) + body[:2] + b"\x01" * topics)
        elif kind == 3 and (first >> 1) & 3:  # QoS 1 PUBLISH: held back
            at = 2 + int.from_bytes(body[:2], "big")
            with self._lock:
                self.held.append(body[at:at + 2])
                if self._acking:
                    self._ack_held()
        elif kind == 12:  # PINGREQ
            self._send(b"\xd0\x00")

    def ack(self) -> None:
        """From now on acknowledge every publish, the held ones first."""
        with self._lock:
            self._acking = True
            self._ack_held()

    def _ack_held(self) -> None:
        for pid in self.held:
            self._send(b"\x40\x02" + pid)
        self.held.clear()

    def _send(self, data: bytes) -> None:
        if self._conn is not None:
            self._conn.sendall(data)

    def close(self) -> None:
        self.listener.close()
        if self._conn is not None:
            self._conn.close()
        self._thread.join(timeout=5)


def test_an_uplink_pump_stuck_on_unacknowledged_sends_stops_the_watchdog(
        tmp_path: Path, systemd: Systemd) -> None:
    broker = SilentBroker()
    cfg = box_config(tmp_path, "wd-test-02", uplink_port=broker.port, extra="inflight = 1")
    gw = Gateway(config.load(cfg), wall_clock=lambda: 1_800_000_000.0, synced=lambda: True)
    # Production: 120 s. 2 s: a ping comes first unless the loop stalls for ~2 s at once.
    gw.watchdog = judge = CountingWatchdog(uplink_stall_s=2.0)

    async def scenario() -> tuple[str, list[str], str]:
        await gw.start()
        try:
            for _ in range(200):  # bounded: up to 10 s for the first publish to be held
                if broker.held and gw.publisher.connected.is_set():
                    break
                await asyncio.sleep(0.05)
            # Its one in-flight slot holds a send the broker never acknowledges: stuck.
            await systemd.mark("stuck")
            why = await systemd.first(STARVING, after="stuck")
            await judge.more_verdicts(5)
            broker.ack()
            await systemd.mark("acked")
            again = await systemd.first("WATCHDOG=1", after="acked")
            return why, systemd.after("stuck"), again
        finally:
            await gw.stop()
            broker.close()

    why, stuck, again = asyncio.run(scenario())
    assert broker.held == [] and gw.pump.state_messages >= 1  # it did publish, and got its ack
    assert why.startswith(STARVING + "the uplink pump has not turned for"), stuck
    starving = starving_span(stuck, "acked")
    assert "WATCHDOG=1" in stuck[:stuck.index(starving[0])], stuck  # within the stall: fed
    assert "WATCHDOG=1" not in starving, stuck
    assert again == "WATCHDOG=1"  # acknowledged: the pump turns, fed again


def test_the_state_message_says_which_rigs_are_active_and_which_idle(tmp_path: Path) -> None:
    gw = Gateway(config.load(box_config(tmp_path, "rigs-test-01")))
    datagrams = [item.payload for item in iter_datagrams(str(SAMPLE))][:20]

    async def scenario() -> list[object]:
        await gw.start()
        seen = []
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", 0))
                b.bind(("127.0.0.2", 0))
                for tx in (a, b):
                    for payload in datagrams:
                        tx.sendto(payload, ("127.0.0.1", gw.capture.port))
                await asyncio.sleep(0.2)
                seen.append(gw._uplink_state()["rigs"])
                for _ in range(40):  # bounded: rig a keeps sending, b has gone quiet
                    a.sendto(datagrams[0], ("127.0.0.1", gw.capture.port))
                    await asyncio.sleep(0.05)
                seen.append(gw._uplink_state()["rigs"])
        finally:
            await gw.stop()
        return seen

    first, later = asyncio.run(scenario())
    assert first == {"127.0.0.1": "active", "127.0.0.2": "active"}
    assert later == {"127.0.0.1": "active", "127.0.0.2": "idle"}


def test_the_watchdog_reads_the_pump_without_waking_it(tmp_path: Path, systemd: Systemd) -> None:
    broker = SilentBroker()
    broker.ack()  # a broker that acknowledges everything: the pump idles between state messages
    cfg = box_config(tmp_path, "wd-test-04", uplink_port=broker.port)
    gw = Gateway(config.load(cfg), wall_clock=lambda: 1_800_000_000.0, synced=lambda: True)
    gw.watchdog = judge = CountingWatchdog()

    async def scenario() -> tuple[int, int, float]:
        await gw.start()
        try:
            for _ in range(200):  # bounded: up to 10 s to connect and send the first state
                if gw.pump.state_messages and gw.publisher.connected.is_set():
                    break
                await asyncio.sleep(0.05)
            turns, looks, start = gw.pump.turns, judge.verdicts, time.monotonic()
            await judge.more_verdicts(20)  # twenty looks at the pump, one every 0.1 s
            assert gw.publisher.connected.is_set()
            return gw.pump.turns - turns, judge.verdicts - looks, time.monotonic() - start
        finally:
            await gw.stop()
            broker.close()

    turned, looks, took_s = asyncio.run(scenario())
    assert looks >= 20 and turned >= 1  # connected and turning by itself
    # Its idle wait turns it every 0.2 s; a look that set its wakeup would add a turn (and an
    # outbox claim) per look: ~20 here, and one a second in production.
    assert turned <= took_s / 0.2 + 2, (turned, looks, took_s)
