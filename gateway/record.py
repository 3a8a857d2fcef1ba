"""`pitbox record`: capture raw F1 UDP into rotating capture files, nothing else.

For building test sets and for post-mortems: the same socket code as the gateway, every
datagram written unparsed with its receive time and source. To record while the gateway runs,
give the gateway `capture.forward = ["127.0.0.1:20778"]` and record on port 20778.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time

from gateway import config
from gateway.capture.f1_udp import F1Capture
from gateway.recorder import RotatingRecorder

log = logging.getLogger("pitbox.record")
SYNC_EVERY_S = 1.0  # a pulled plug loses at most this much
REPORT_EVERY_S = 10.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("record", help="capture raw F1 UDP into rotating capture files",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="captures", help="directory for the .pbxcap files (default ./captures)")
    p.add_argument("--bind", help="address to listen on (default: capture.f1_bind, 0.0.0.0)")
    p.add_argument("--port", type=int, help="UDP port (default: capture.f1_port, 20777)")
    p.add_argument("--rotate-mb", type=float, default=256.0, help="start a new file past this size (default 256)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--config", help="TOML config file (default: built-in defaults)")
    p.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    recorder = RotatingRecorder(args.out, max_bytes=int(args.rotate_mb * (1 << 20)))
    host = args.bind or cfg.capture.f1_bind
    port = cfg.capture.f1_port if args.port is None else args.port
    asyncio.run(_record(recorder, host, port, args.duration))
    print(f"record: {recorder.records} datagrams, {recorder.bytes / 1e6:.1f} MB in "
          f"{len(recorder.files)} file(s): {', '.join(str(f) for f in recorder.files) or 'none'}")
    return 0


async def _record(recorder: RotatingRecorder, host: str, port: int, duration_s: float) -> None:
    def on_datagram(payload: bytes, src: str, ts_ns: int, _mono: int, _port: int) -> None:
        recorder.write(payload, src, ts_ns)

    capture = F1Capture(on_datagram, host=host, port=port)
    await capture.start()
    print(f"record: listening on udp {host}:{capture.port}, writing to {recorder.directory}/",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if duration_s > 0:
        loop.call_later(duration_s, stop.set)
    last_report = time.monotonic()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), SYNC_EVERY_S)
            except TimeoutError:
                pass
            recorder.sync()
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                log.info("record: %d datagrams, %.1f MB", recorder.records, recorder.bytes / 1e6)
    finally:
        capture.close()
        recorder.close()
