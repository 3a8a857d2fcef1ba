"""iRacing commands: `pitbox shim` (on the iRacing PC) and `pitbox iracing ingest FILE.ibt`."""

from __future__ import annotations

import argparse
import json
import sys

from gateway import config
from gateway.errors import PitboxError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from gateway.shim import cli as shim_cli

    sh = sub.add_parser("shim", help="on the iRacing PC: relay the sim's telemetry to the box",
                        description=shim_cli.DESCRIPTION)
    shim_cli.add_arguments(sh)
    sh.set_defaults(func=shim_cli.run)

    ir = sub.add_parser("iracing", help="iRacing files", description="iRacing files.")
    isub = ir.add_subparsers(dest="iracing_command", metavar="COMMAND", required=True)
    ing = isub.add_parser(
        "ingest", help="run an .ibt telemetry file through normalize and the stint logic",
        description="Read an iRacing .ibt file (header checked before pyirsdk sees it), run "
        "every row through the same normalizer and stint/pit state machine as live data, and "
        "publish the records through the outbox and uplink; --json prints the laps and events "
        "instead, one JSON object per line.")
    ing.add_argument("file", help="the .ibt file")
    ing.add_argument("--json", action="store_true", help="print laps and events, publish nothing")
    ing.add_argument("--config", help="TOML config file (default: built-in defaults)")
    ing.add_argument("--drain-timeout", type=float, default=60.0,
                     help="seconds to wait for the outbox to drain (default 60)")
    ing.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    try:
        from gateway.iracing_ingest import ingest, publish
    except ModuleNotFoundError as exc:  # the .ibt's session info needs PyYAML
        if exc.name != "yaml":
            raise
        raise PitboxError("iracing ingest needs PyYAML, a pitbox dependency: reinstall pitbox, "
                          "or `pip install 'PyYAML>=6,<7'`") from exc

    records, stats = ingest(args.file)
    if args.json:
        for rec in records:
            if rec.KIND in ("lap", "event"):
                print(json.dumps({"kind": rec.KIND, **rec.to_dict()}, sort_keys=True))
    else:
        cfg = config.load(args.config)
        drained = publish(cfg, records, drain_s=args.drain_timeout)
        if not drained:
            print("pitbox: warning: outbox not drained yet; it stays buffered for the next run",
                  file=sys.stderr)
    kinds = {k: sum(1 for r in records if r.KIND == k) for k in ("lap", "event", "state")}
    print(f"iracing ingest: {stats['rows']} rows; laps {kinds['lap']}, events {kinds['event']}, "
          f"states {kinds['state']}", file=sys.stderr)
    return 0
