"""Move rows from the outbox to the broker: claim → batch → publish → ack (or release).

Claimed rows wait in *streams*, one per (lane, priority, kind, rig, session), each FIFO. Each
send picks the stream that matters most — live laps, events and states first, then live samples
and the backlog in turns, each by priority and oldest sequence — and fills its message with
the other streams of that kind (a message holds one kind, of any rig), so a lap goes out the
moment a token allows while an outage's backlog drains behind it, and each rig's records leave
in order. Sends are paced by a token bucket (Cloud IoT Core: 100 messages/s per device, in
any second; we plan 5% under it) whose last tokens are kept for laps and events; up to
`inflight` messages await their PUBACK at once. A row is acked only after its message's
PUBACK; on a failure its rows are released and claimed again later, back in their place in
their stream (the bridge dedups resends on device+seq). Every `state_every_s` (>= 10 s) the
box's own state goes to `/devices/{id}/state`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import msgpack

from gateway.errors import PitboxError
from gateway.outbox import Outbox, Row
from gateway.outbox.store import BACKLOG, LIVE
from gateway.uplink import topics, wire
from gateway.uplink.batching import (
    ENVELOPE_OVERHEAD,
    ROW_OVERHEAD,
    Message,
    is_record_body,
    message,
)
from gateway.uplink.ratelimit import TokenBucket

log = logging.getLogger("pitbox.uplink")

MIN_STATE_EVERY_S = 10.0  # the convention's recommended ceiling for state messages
URGENT_PRIORITY = 3  # session 0, lap 1, event 2, stint state 3: may use the reserve
BURST_SHARE = 0.1  # of a second's messages, sendable at once; half of it kept for urgent ones
# The broker counts arrivals, and the network bunches them: a box sending exactly the cap
# every second shows the broker more than the cap in some second after a few ms of jitter.
# Planning 5% under the cap absorbs ~70 ms of bunching at 100 msg/s.
RATE_HEADROOM = 0.05
LIVE_BUFFER_ROWS = 20_000  # claimed live rows held in streams at most
BACKLOG_CLAIM_ROWS = 10_000  # rows per backlog claim: full messages for every rig


class Publisher(Protocol):
    connected: asyncio.Event
    session: int

    async def publish(self, topic: str, payload: bytes) -> None: ...


StreamKey = tuple[int, int, str, str, str]  # lane, priority, kind, rig, session_id


class Pump:
    def __init__(self, outbox: Outbox, publisher: Publisher, *, device: str, prefix: str,
                 wall_ns: Callable[[], int], inflight: int = 20, batch_records: int = 200,
                 max_bytes: int = wire.MAX_MESSAGE_BYTES, rate_per_s: float = 100.0,
                 state: Callable[[], dict[str, Any]] | None = None,
                 state_every_s: float = MIN_STATE_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.device, self.prefix = device, prefix
        self.wall_ns = wall_ns
        self.inflight = inflight
        self.batch_records = batch_records
        self.max_bytes = max_bytes
        self.state = state
        self.state_every_s = max(MIN_STATE_EVERY_S, state_every_s)
        self._clock = clock
        # The cap holds over any one second: the burst plus a second's refill is what we plan,
        # a little under `rate_per_s` (RATE_HEADROOM). Half the burst is banked for laps,
        # events and states (one message has every rig's).
        planned = rate_per_s * (1 - RATE_HEADROOM)
        burst = max(2, round(planned * BURST_SHARE)) if planned >= 4 else 1
        self.bucket = TokenBucket(max(planned - burst, planned / 2), burst=burst,
                                  reserve=burst // 2, now_s=clock())
        self.wakeup = asyncio.Event()  # set by the gateway after a commit
        self.turns = 0  # iterations of `run`'s loop: the gateway's watchdog reads it
        self.acked_records = 0
        self.acked_messages = 0
        self.state_messages = 0
        self.failures = 0
        self.corrupt = 0  # outbox rows whose body is not a record (deleted, logged)
        self._slots = asyncio.Semaphore(inflight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: dict[StreamKey, deque[Row]] = {}
        self._buffered = [0, 0]  # rows held in streams per lane
        self._session = -1
        self._backlog_turn = False
        self._next_state_s = 0.0

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            self.turns += 1
            await self.publisher.connected.wait()
            if self.publisher.session != self._session:
                self._session = self.publisher.session
                self.outbox.mark_backlog()  # what is buffered now drains behind live data
                self._demote_held()
            await self._slots.acquire()
            try:
                sent = await self._send_next()
            except BaseException:
                self._slots.release()
                raise
            if not sent:
                self._slots.release()
                self.wakeup.clear()
                try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with asyncio.timeout(0.2):
                        await self.wakeup.wait()
                except TimeoutError:
                    pass

    async def _send_next(self) -> bool:
        """Start one publish (holding a slot). False when there was nothing to send."""
        now = self._clock()
        if self.state is not None and now >= self._next_state_s:
            await self._take_token(urgent=True)
            self._next_state_s = now + self.state_every_s
            self._spawn(self._send_state())
            return True
        self._refill()
        if not self._streams:
            return False
        await self._take_token(urgent=any(k[0] == LIVE and k[1] <= URGENT_PRIORITY
                                          for k in self._streams))
        self._refill()  # rows committed while we waited for a token may be more urgent
        key = self._best_stream()
        assert key is not None
        msg = self._message_from(key)
        self._spawn(self._send(msg))
        return True

    async def _take_token(self, *, urgent: bool) -> None:
        for _ in range(10_000):  # bounded; each wait is at most burst/rate seconds
            wait = self.bucket.wait_s(self._clock(), urgent=urgent)
            if wait <= 0 and self.bucket.take(self._clock(), urgent=urgent):
                return
            await asyncio.sleep(max(wait, 0.001))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- streams -----------------------------------------------------------------------------
    def _refill(self) -> None:
        """Claim new live rows (always) and more backlog when little is waiting."""
        if self._buffered[LIVE] < LIVE_BUFFER_ROWS:
            self._hold(self.outbox.claim(LIVE_BUFFER_ROWS - self._buffered[LIVE], lane=LIVE), LIVE)
        # Enough backlog for full messages of every rig, claimed a slice at a time so that no
        # single claim holds up the loop (and with it the live records).
        want = self.batch_records * self.inflight
        if self._buffered[BACKLOG] < want // 2:
            self._hold(self.outbox.claim(BACKLOG_CLAIM_ROWS, lane=BACKLOG), BACKLOG)

    def _hold(self, rows: list[Row], lane: int) -> None:
        bad = [r for r in rows if not is_record_body(r.body, r.fields)]
        if bad:  # a torn or foreign row no one can read: dropped and said, never resent for ever
            self.corrupt += len(bad)
            log.error("uplink: %d unreadable outbox rows dropped (seq %s…); %d so far",
                      len(bad), bad[0].seq, self.corrupt)
            self.outbox.ack(bad)
            rows = [r for r in rows if is_record_body(r.body, r.fields)]
        late: set[StreamKey] = set()
        for row in rows:
            key = (lane, row.priority, row.kind, row.rig, row.session_id)
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = deque()
            elif stream and stream[-1].seq > row.seq:
                late.add(key)  # a released row claimed again, behind newer held rows
            stream.append(row)
        for key in late:  # back into its place, so a failed send never reorders a rig
            self._streams[key] = deque(sorted(self._streams[key], key=lambda r: r.seq))
        self._buffered[lane] += len(rows)

    def _demote_held(self) -> None:
        """Rows held from the last connection that are now backlog join their backlog stream
        in sequence order, so a rig's backlog never overtakes its own older rows."""
        for key in [k for k in self._streams if k[0] == LIVE]:
            stream = self._streams[key]
            old = [r for r in stream if r.seq <= self.outbox.live_from]
            if not old:
                continue
            rest = deque(r for r in stream if r.seq > self.outbox.live_from)
            if rest:
                self._streams[key] = rest
            else:
                del self._streams[key]
            back = (BACKLOG, *key[1:])
            merged = sorted([*self._streams.get(back, ()), *old], key=lambda r: r.seq)
            self._streams[back] = deque(merged)
            self._buffered[LIVE] -= len(old)
            self._buffered[BACKLOG] += len(old)

    def _best_stream(self) -> StreamKey | None:
        """Live laps/events/states first; then live samples and the backlog take turns, so
        under the message-rate cap a busy venue's samples cannot starve an outage's drain
        (nor the drain the live samples)."""
        if not self._streams:
            return None
        best = min(self._streams, key=lambda k: (k[0], k[1], self._streams[k][0].seq))
        if best[0] == LIVE and best[1] <= URGENT_PRIORITY:
            return best
        backlog = [k for k in self._streams if k[0] == BACKLOG]
        if backlog and (best[0] == BACKLOG or self._flip()):
            # The fullest backlog stream of the most important kind: full messages drain
            # fastest under the rate cap; each stream is FIFO, so every rig stays in order.
            return min(backlog, key=lambda k: (k[1], -len(self._streams[k])))
        return best

    def _flip(self) -> bool:
        self._backlog_turn = not self._backlog_turn
        return self._backlog_turn

    def _message_from(self, key: StreamKey) -> Message:
        """The chosen stream's rows, then (room allowing) those of every other stream of the
        same kind — live before backlog, oldest first — in one message: a venue's 20 rigs
        fit in one message per kind, not twenty."""
        kind, fields = key[2], self._streams[key][0].fields
        others = sorted((k for k in self._streams if k[2] == kind and k != key),
                        key=lambda k: (k[0], k[1], self._streams[k][0].seq))
        take: list[Row] = []
        size = ENVELOPE_OVERHEAD
        for k in (key, *others):
            stream = self._streams[k]
            took = 0
            # Rows stored before wire version 3 (maps) never share a message with arrays.
            while stream and len(take) < self.batch_records and stream[0].fields == fields:
                row_size = len(stream[0].body) + ROW_OVERHEAD
                if take and size + row_size > self.max_bytes:
                    break
                take.append(stream.popleft())
                size += row_size
                took += 1
            if not stream:
                del self._streams[k]
            self._buffered[k[0]] -= took
            if stream or len(take) >= self.batch_records:
                break  # full: the rest waits for the next message
        return message(take, device=self.device, sent_ns=self.wall_ns())

    def release_held(self) -> None:
        """Give every claimed-but-unsent row back to the outbox (on shutdown)."""
        for stream in self._streams.values():
            self.outbox.release(list(stream))
        self._streams.clear()
        self._buffered = [0, 0]

    # -- sending -----------------------------------------------------------------------------
    async def _send(self, msg: Message) -> None:
        try:
            await self.publisher.publish(topics.events(self.prefix, self.device, msg.kind),
                                         msg.payload)
        except (PitboxError, OSError) as exc:
            self.failures += 1
            log.warning("uplink: %d %s records not sent, will retry: %s", len(msg.rows),
                        msg.kind, exc)
            self.outbox.release(msg.rows)
            await asyncio.sleep(1.0)
        except Exception:  # a bug of ours: the rows must not stay claimed for ever
            self.failures += 1
            log.exception("uplink: %d %s records not sent, will retry", len(msg.rows), msg.kind)
            self.outbox.release(msg.rows)
            await asyncio.sleep(1.0)
        else:
            self.outbox.ack(msg.rows)
            self.acked_records += len(msg.rows)
            self.acked_messages += 1
        finally:
            self._slots.release()

    async def _send_state(self) -> None:
        try:
            assert self.state is not None
            body = msgpack.packb({"device": self.device, "sent_ns": self.wall_ns(),
                                  **self.state()}, use_bin_type=True)
            await self.publisher.publish(topics.state(self.prefix, self.device), body)
            self.state_messages += 1
        except (PitboxError, OSError) as exc:
            log.warning("uplink: state not sent: %s", exc)
        finally:
            self._slots.release()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (True) or `timeout_s` passed (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            self.outbox.flush()
            if self.outbox.pending() == 0:
                return True
            self.wakeup.set()
            await asyncio.sleep(0.05)
        return False
