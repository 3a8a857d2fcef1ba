"""`pitbox iracing ingest`: a historical `.ibt` file through the live normalize/stint logic.

The file is mapped, its header checked by our own validation (a corrupt file is one clear
error, never a memory blow-up), then pyirsdk's `IBT` reads the columns we need. Every row
is one observation of the player's car, fed with the row's `SessionTime` as the injected
clock, so the lap-time wait and every pit rule behave as they do live. An `.ibt` holds the
player's car only (no `CarIdx*` arrays) and only while they were in the car. Laps still
waiting for their time when the session changes or the file ends are kept, without a time.
"""

from __future__ import annotations

import asyncio
import mmap
from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.decode.irsdk import header, session_yaml
from gateway.decode.irsdk.variables import VARS
from gateway.errors import ConfigError, PitboxError
from gateway.normalize.iracing import IRacingNormalizer, observe
from gateway.normalize.iracing_session import facts_from, session_key
from gateway.records import Record

RIG = "ibt"


def ingest(path: str) -> tuple[list[Record], dict[str, Any]]:
    """All records the file yields, in order, and a few counts."""
    try:
        with open(path, "rb") as fh:
            if Path(path).stat().st_size == 0:
                raise header.IrsdkFormatError("empty", f"{path} is empty")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                layout = header.check(mm, ibt=True)
                info = session_yaml.parse(header.session_info_bytes(mm, layout))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except header.IrsdkFormatError as exc:
        raise PitboxError(f"{path}: not a valid .ibt file: {exc}") from exc
    facts = facts_from(info)
    columns = _columns(path, [n for n in VARS if n in layout.variables])
    rows = layout.record_count or 0
    start_ns = (layout.start_epoch_s or 0) * 1_000_000_000
    out: list[Record] = []
    norm: IRacingNormalizer | None = None
    t0 = None
    ts_ns = mono_ns = 0
    for i in range(rows):
        values = {name: col[i] for name, col in columns.items()}
        num = int(values.get("SessionNum", 0))
        if norm is None or norm.session_num != num:  # a file can span sessions
            if norm is not None:
                out += norm.flush(ts_ns=ts_ns, mono_ns=mono_ns)
            norm = IRacingNormalizer(session_key(facts, num), facts, num, rig=RIG,
                                     historical=True)
        t = float(values.get("SessionTime", i / 60))
        t0 = t if t0 is None else t0
        ts_ns, mono_ns = start_ns + round((t - t0) * 1e9), round(t * 1e9)
        out += norm.feed(observe(values, facts, in_car=True), source=path, now_s=t, ts_ns=ts_ns,
                         mono_ns=mono_ns)
    if norm is not None:
        out += norm.flush(ts_ns=ts_ns, mono_ns=mono_ns)
    return out, {"rows": rows, "variables": len(layout.variables)}


def _columns(path: str, names: list[str]) -> dict[str, list[Any]]:
    try:
        import irsdk  # pyirsdk reads the rows once our checks passed
    except ImportError as exc:
        raise PitboxError("iracing ingest needs pyirsdk, a pitbox dependency: reinstall "
                          "pitbox, or `pip install 'pyirsdk>=1.3.7,<2'`") from exc

    ibt = irsdk.IBT()
    ibt.open(path)
    try:
        return {name: ibt.get_all(name) for name in names}
    finally:
        ibt.close()


def publish(cfg: Config, records: list[Record], *, drain_s: float) -> bool:
    """Buffer `records` in the outbox and let the uplink drain it; True if it did."""
    from gateway.service import Gateway

    async def run() -> bool:
        gw = Gateway(cfg, live=False)
        await gw.start()
        gw.outbox.append(records)
        gw.pipeline.commit()
        gw.pump.wakeup.set()
        return await gw.stop(drain_s=drain_s)

    return asyncio.run(run())
