"""Move rows from the outbox to the broker: claim → batch → publish → ack (or release).

Up to `inflight` messages are awaited at once, so throughput is the window over the round trip,
not one message per round trip. A row is acked only after its message's PUBACK; on any failure
its rows are released and will be claimed again (the bridge dedups resends on device+seq).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from gateway.errors import PitboxError
from gateway.outbox import Outbox
from gateway.uplink import topics
from gateway.uplink.batching import Message, batch

log = logging.getLogger("pitbox.uplink")


class Publisher(Protocol):
    connected: asyncio.Event

    async def publish(self, topic: str, payload: bytes) -> None: ...


class Pump:
    def __init__(self, outbox: Outbox, publisher: Publisher, *, device: str, prefix: str,
                 wall_ns: Callable[[], int], inflight: int = 20, batch_records: int = 200) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.device, self.prefix = device, prefix
        self.wall_ns = wall_ns
        self.inflight = inflight
        self.batch_records = batch_records
        self.wakeup = asyncio.Event()  # set by the pipeline after a commit
        self.acked_records = 0
        self.acked_messages = 0
        self._slots = asyncio.Semaphore(inflight)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            await self.publisher.connected.wait()
            rows = self.outbox.claim(self.batch_records * self.inflight)
            if not rows:
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=0.2)
                except TimeoutError:
                    pass
                continue
            messages = batch(rows, device=self.device, sent_ns=self.wall_ns(),
                             max_records=self.batch_records)
            for msg in messages:
                await self._slots.acquire()
                task = asyncio.create_task(self._send(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, msg: Message) -> None:
        try:
            await self.publisher.publish(topics.events(self.prefix, self.device, msg.kind), msg.payload)
        except (PitboxError, OSError) as exc:
            log.warning("uplink: %d %s records not sent, will retry: %s", len(msg.rows), msg.kind, exc)
            self.outbox.release(msg.rows)
            await asyncio.sleep(1.0)
        else:
            self.outbox.ack(msg.rows)
            self.acked_records += len(msg.rows)
            self.acked_messages += 1
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
