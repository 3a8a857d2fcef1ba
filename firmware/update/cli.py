"""`pitbox update`: apply a signed bundle from a file or a URL (what pitbox-update.service runs),
or `--recover` an interrupted one (what pitbox-update-recover.service runs at boot)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from firmware.update.download import fetch
from firmware.update.installer import VenvInstaller
from firmware.update.manifest import UpdateError
from firmware.update.updater import POSTPONED, Updater

EX_TEMPFAIL = 75  # "try again later": a live session postponed the update


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "update", help="apply a signed update bundle (A/B slots, health-checked, rolls back)",
        description="Verify a bundle's Ed25519 signature and every wheel's hash, refuse versions "
        "older than the installed one, install into the inactive slot, switch to it with one "
        "rename, restart the gateway and keep the new version only if it reports healthy within "
        "--deadline (uplink connected, if the running version's was); otherwise switch back. "
        "Never during a live session (exit 75: try later).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--bundle", type=Path, help="a bundle file on this box")
    src.add_argument("--url", help="download the bundle (resumes an interrupted download)")
    src.add_argument("--recover", action="store_true",
                     help="only roll back an update a pulled plug interrupted, to the slot that "
                     "last passed its health check (pitbox-update-recover.service runs this at "
                     "boot from /opt/pitbox/good, before the gateway, with --no-restart); "
                     "exit 75 while a session is live")
    p.add_argument("--status", action="store_true", help="print the slots and exit")
    p.add_argument("--root", type=Path, default=Path("/opt/pitbox"),
                   help="where the slots live (default /opt/pitbox)")
    p.add_argument("--public-key", type=Path, default=Path("/etc/pitbox/fleet-update.pub.pem"),
                   help="the fleet's Ed25519 public key (default /etc/pitbox/fleet-update.pub.pem)")
    p.add_argument("--health-file", type=Path, default=Path("/run/pitbox/health.json"),
                   help="the gateway's health report (default /run/pitbox/health.json)")
    p.add_argument("--restart-cmd", default="systemctl restart pitbox-gateway.service",
                   help="how to restart the gateway (default: systemctl restart …)")
    p.add_argument("--no-restart", action="store_true",
                   help="install and switch only, no restart or health check (image building)")
    p.add_argument("--deadline", type=float, default=120.0,
                   help="seconds the new version has to report healthy (default 120)")
    p.add_argument("--uplink-grace", type=float, default=30.0,
                   help="seconds to wait for the uplink before accepting 'capturing' (default "
                   "30); only where the running version's uplink was not connected either")
    p.add_argument("--pip", metavar="PYTHON",
                   help="install with this interpreter's pip into slots made without pip "
                   "(faster; default: each slot gets its own pip)")
    p.set_defaults(func=cmd_update)


def cmd_update(args: argparse.Namespace) -> int:
    updater = Updater(root=args.root, public_pem=b"", installer=VenvInstaller(pip_python=args.pip),
                      restart_cmd=None if args.no_restart else shlex.split(args.restart_cmd),
                      health_file=args.health_file, deadline_s=args.deadline,
                      uplink_grace_s=args.uplink_grace)
    if args.recover:
        result = updater.recover()
        print(f"update: recover: {result}; running {updater.running()}")
        return EX_TEMPFAIL if result == POSTPONED else 0
    if args.status or not (args.bundle or args.url):
        print(status_text(updater))
        return 0
    try:
        updater.public_pem = args.public_key.read_bytes()
    except OSError as exc:
        raise UpdateError(f"cannot read the fleet public key {args.public_key}: "
                          f"{exc.strerror}") from exc
    bundle = args.bundle or fetch(args.url, args.root / "downloads")
    try:
        result = updater.apply(bundle)
    finally:
        if args.url:  # downloaded: installed or refused, it is not needed again
            bundle.unlink(missing_ok=True)
    print(f"update: {result}; running {updater.running()}")
    return EX_TEMPFAIL if result == POSTPONED else 0


def status_text(updater: Updater) -> str:
    slots = updater.slots
    state = slots.state()
    lines = [(f"root {slots.root}: current slot {slots.current() or '-'}, known-good slot "
              f"{slots.good() or '-'}, floor {state.get('floor', '-')}")]
    if isinstance(state.get("trial"), dict):
        lines.append(f"  an unconfirmed update to {state['trial'].get('version')} is pending "
                     "(rolled back at the next boot or update run)")
    for name in ("a", "b"):
        info = slots.info(name)
        lines.append(f"  slot {name}: {info.version if info else 'empty or incomplete'}")
    return "\n".join(lines)
