"""The shim's loop: poll the sim at `hz`, hand what changed to the link, until stopped.

One asyncio loop: the link's task owns the socket; the poll loop reads pyirsdk (a few
microseconds per poll) and never waits for the network. When the sim is not running the
shim waits for it, and when it stops (or the dump disappears) it waits again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.errors import MalformedPacket
from gateway.shim.config import ShimConfig
from gateway.shim.delta import DeltaTracker
from gateway.shim.link import Link
from gateway.shim.reader import IrsdkReader

log = logging.getLogger("pitbox.shim")

SIM_RETRY_S = 2.0


class Shim:
    def __init__(self, cfg: ShimConfig, reader: IrsdkReader | None = None) -> None:
        self.cfg = cfg
        self.reader = reader or IrsdkReader(cfg.simulate)
        self.link = Link(cfg.box_address(), cfg.pairing_key.encode(), cfg.shim_id,
                         proxy=cfg.proxy_address(), buffer_frames=cfg.buffer_frames)
        self.delta = DeltaTracker(cfg.send_hz)
        self.polls = 0

    async def run(self, stop: asyncio.Event) -> None:
        link = asyncio.create_task(self.link.run(stop), name="shim-link")
        try:
            while not stop.is_set():
                if not self.reader.connected and not self._connect():
                    await _wait(stop, SIM_RETRY_S)
                    continue
                self.poll_once(time.monotonic())
                await _wait(stop, 1.0 / self.cfg.hz)
        finally:
            stop.set()
            await link
            self.reader.close()

    def _connect(self) -> bool:
        self.reader.close()  # a sim that went away: drop the old map first
        try:
            ok = self.reader.connect()
        except (MalformedPacket, OSError) as exc:
            log.error("shim: cannot use %s: %s", self.cfg.simulate or "the sim", exc)
            return False
        if ok:
            self.delta = DeltaTracker(self.cfg.send_hz)  # a new sim session: send it all
        return ok

    def poll_once(self, now_s: float) -> None:
        values, info = self.reader.poll()
        self.polls += 1
        if info is not None:
            self.link.put("info", info)
        diff = self.delta.changes(values, now_s)
        if diff is not None:
            self.link.put("tel", {"vars": diff, "full": len(diff) == len(values)
                                  and len(self.delta.sent) == len(diff)})


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
