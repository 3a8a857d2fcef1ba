"""`pitbox …`: one entry point. `main(argv) -> int` is what tests call in-process."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from gateway.errors import PitboxError

DESCRIPTION = """pitbox: a telemetry box for sim-racing teams.

Captures F1 UDP telemetry from every rig on the LAN, buffers it in SQLite so nothing is
lost when the venue's internet drops, and publishes it over MQTT (RS256 device JWT) to a
broker; in the cloud a bridge writes it to a store in the Teamtactics layout.
Run `pitbox demo` to see the whole pipeline on this machine.
"""


def build_parser() -> argparse.ArgumentParser:
    from cloud.cli import register as register_cloud
    from firmware.cli import register as register_firmware
    from gateway.cli import register as register_gateway
    from gateway.iracing_cli import register as register_iracing
    from gateway.status.cli import register as register_leds
    from pitbox.demo import register as register_demo

    parser = argparse.ArgumentParser(prog="pitbox", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_demo(sub)
    register_gateway(sub)
    register_iracing(sub)
    register_cloud(sub)
    register_firmware(sub)
    register_leds(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except PitboxError as exc:
        if os.environ.get("PITBOX_DEBUG") == "1":
            traceback.print_exc()
        print(f"pitbox: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
