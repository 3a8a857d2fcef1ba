"""The shim's command line: `pitbox shim …` on a dev machine, `pitbox-shim.exe …` on the PC.

Kept inside `gateway/shim/` (importing nothing box-side) so PyInstaller packs only the shim.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from gateway.errors import PitboxError

DESCRIPTION = (
    "Read iRacing's telemetry (pyirsdk, 60 Hz) and send what changed to the box's relay: "
    "framed msgpack over TCP, every frame HMAC-SHA256'd with the pairing key. Reconnects with "
    "backoff and buffers briefly while the box is away. Options override the INI file (a "
    "[shim] section: box, pairing_key, id, hz, send_hz, buffer_frames, proxy, debug, logfile, "
    "simulate). --simulate reads an irsdk dump file instead of the live sim, on any OS.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="INI file with a [shim] section")
    parser.add_argument("--simulate", metavar="DUMP", help="irsdk memory-map dump to read instead")
    parser.add_argument("--box", metavar="HOST:PORT",
                        help="the box's relay (default 127.0.0.1:20778)")
    parser.add_argument("--pairing-key", help="the box's [relay] pairing_key")
    parser.add_argument("--id", help="this PC's name at the box (default: host name)")
    parser.add_argument("--hz", type=float, help="polls per second (default 60)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="stop after this long (default: run until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    from gateway.shim import config
    from gateway.shim.run import Shim

    cfg = config.load(args.config, simulate=args.simulate, box=args.box,
                      pairing_key=args.pairing_key, id=args.id, hz=args.hz)
    if cfg.logfile:
        logging.getLogger().addHandler(logging.FileHandler(cfg.logfile, encoding="utf-8"))
    if cfg.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    if len(cfg.pairing_key) < 16:
        raise PitboxError("the shim needs the box's pairing key (--pairing-key, or pairing_key "
                          "in the INI), at least 16 characters")
    try:
        import irsdk  # noqa: F401  # checked here: later it would fail inside the poll loop
    except ImportError as exc:
        raise PitboxError("the shim needs pyirsdk: `pip install 'pyirsdk>=1.3.7,<2'`") from exc

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # Windows: Ctrl-C arrives as KeyboardInterrupt
                pass
        if args.seconds > 0:
            loop.call_later(args.seconds, stop.set)
        await Shim(cfg).run(stop)

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    """`pitbox-shim.exe`: the same command, standalone."""
    parser = argparse.ArgumentParser(prog="pitbox-shim", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return run(args)
    except PitboxError as exc:
        print(f"pitbox-shim: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
