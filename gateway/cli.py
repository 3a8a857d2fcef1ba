"""Gateway commands: `gateway run`, `replay`, `outbox stats`. Thin: each calls one library piece."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator

from gateway import config, record
from gateway.decode.f1 import decode_packet, describe
from gateway.errors import MalformedPacket
from gateway.outbox import report as outbox_report
from gateway.outbox.stats import read_stats
from gateway.recorder import Captured, is_capture, iter_datagrams
from gateway.replay import replay_into, send_udp
from gateway.service import Gateway


def host_port(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `:PORT` (127.0.0.1) for argparse; `[::1]:PORT` for IPv6."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: want HOST:PORT, e.g. 127.0.0.1:20777")
    return host.strip("[]") or "127.0.0.1", int(port)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("gateway", help="the box's service", description="The box's service.")
    gsub = g.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)
    run = gsub.add_parser("run", help="capture, buffer and uplink until stopped (what systemd starts)",
                          description="Listen for F1 UDP telemetry, buffer records in the SQLite "
                          "outbox and publish them to the broker, until SIGTERM or Ctrl-C.")
    run.add_argument("--config", help="TOML config file (default: built-in defaults)")
    run.set_defaults(func=cmd_gateway_run)

    record.register(sub)
    rp = sub.add_parser("replay", help="feed a recorded capture through the pipeline",
                        description="Feed a pitbox capture file (or one raw .bin datagram) through "
                        "decode → normalize → outbox → uplink, as live data would go, then wait for "
                        "the outbox to drain. With --to, send it over UDP to a running gateway instead.")
    rp.add_argument("file", help="capture file (.pbxcap) or raw datagram (.bin)")
    rp.add_argument("--speed", type=float, default=1.0,
                    help="1 = recorded pace, 10 = ten times faster, 0 = as fast as possible")
    rp.add_argument("--config", help="TOML config file (default: built-in defaults)")
    rp.add_argument("--to", metavar="HOST:PORT", type=host_port,
                    help="send the datagrams over UDP to a running gateway instead")
    rp.add_argument("--drain-timeout", type=float, default=60.0,
                    help="seconds to wait for the outbox to drain at the end (default 60)")
    rp.set_defaults(func=cmd_replay)

    ob = sub.add_parser("outbox", help="inspect the store-and-forward buffer",
                        description="Inspect the SQLite outbox.")
    osub = ob.add_subparsers(dest="outbox_command", metavar="COMMAND", required=True)
    st = osub.add_parser("stats", help="what is buffered, by kind and age",
                         description="Print the rows waiting in the outbox, by kind, with the age "
                         "of the oldest.")
    st.add_argument("--config", help="TOML config file (default: built-in defaults)")
    st.set_defaults(func=cmd_outbox_stats)

    f1 = sub.add_parser("f1", help="look inside F1 telemetry", description="Look inside F1 telemetry.")
    f1sub = f1.add_subparsers(dest="f1_command", metavar="COMMAND", required=True)
    dump = f1sub.add_parser("dump", help="decode a capture or a raw .bin, one line per datagram",
                            description="Decode every datagram of a capture (.pbxcap) or a raw "
                            "datagram file (.bin), or a JSON-lines packet dump (.json, one "
                            "{\"message\": bytes} per line): one summary line each, or the whole decoded "
                            "packet as JSON with --json. Malformed datagrams are shown with the "
                            "reason, and counted at the end.")
    dump.add_argument("file", help="capture file (.pbxcap) or raw datagram (.bin)")
    dump.add_argument("--json", action="store_true", help="one JSON object per line")
    dump.add_argument("--limit", type=int, default=0, help="stop after this many (0 = all)")
    dump.set_defaults(func=cmd_f1_dump)


def cmd_gateway_run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(cfg).run(stop)

    asyncio.run(main())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    is_capture(args.file)  # unreadable: a clear error before anything starts
    if args.to:
        host, port = args.to
        send_udp(args.file, host, port, speed=args.speed)
        return 0
    cfg = config.load(args.config)
    drained = asyncio.run(replay_into(Gateway(cfg, live=False), args.file, args.speed,
                                      args.drain_timeout))
    if not drained:
        print("pitbox: warning: outbox not drained yet; it stays buffered for the next run",
              file=sys.stderr)
    return 0


def _f1_datagrams(path: str) -> Iterator[Captured]:
    """A capture's or raw .bin's datagrams, or those of a JSON-lines dump (.json)."""
    if path.endswith((".json", ".jsonl")) and not is_capture(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        yield from (Captured(0, "file", d) for d in describe.datagrams_from_json_lines(text))
        return
    yield from iter_datagrams(path, reader="f1 dump")  # a torn tail: one log line


def cmd_f1_dump(args: argparse.Namespace) -> int:
    is_capture(args.file)
    bad: Counter[str] = Counter()
    n = 0
    for n, item in enumerate(_f1_datagrams(args.file), 1):
        try:
            packet = decode_packet(item.payload)
        except MalformedPacket as exc:
            bad[exc.reason] += 1
            print(json.dumps({"malformed": exc.reason, "size": len(item.payload)}) if args.json
                  else f"{n:6d} MALFORMED {exc.reason} ({len(item.payload)} bytes)")
        else:
            print(describe.as_json(packet) if args.json else f"{n:6d} {describe.summary(packet)}")
        if n == args.limit:
            break
    counts = ", ".join(f"{r} {c}" for r, c in sorted(bad.items())) or "none"
    print(f"f1 dump: {n} datagrams; malformed: {counts}", file=sys.stderr)
    return 0


def cmd_outbox_stats(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    stats = read_stats(cfg.outbox.path)  # read-only: never creates or migrates the file
    budget = int(cfg.outbox.budget_mb * 2**20) if cfg.outbox.budget_mb > 0 else None
    print("\n".join(outbox_report.describe(cfg.outbox.path, stats, budget, time.time_ns())))
    return 0
