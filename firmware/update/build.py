"""The fleet owner's tool: make the fleet's signing key, and build a signed update bundle.

    python -m firmware.update.build keygen --out keys/           # fleet-update.pem + .pub.pem
    python -m firmware.update.build bundle --key keys/fleet-update.pem --version 0.2.0 \\
        --out pitbox-0.2.0.pbxupd dist/*.whl

`pip wheel . -w dist/` makes the wheels (pitbox and every dependency). The private key stays on
the owner's machine; boxes get the .pub.pem (the image installs it in /etc/pitbox/).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from firmware.update.bundle import build
from firmware.update.manifest import UpdateError, new_fleet_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.update.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    kg = sub.add_parser("keygen", help="make the fleet's Ed25519 signing key pair")
    kg.add_argument("--out", type=Path, required=True, help="directory for the two PEM files")
    b = sub.add_parser("bundle", help="sign a bundle of wheels")
    b.add_argument("--key", type=Path, required=True, help="the fleet's private key (PEM)")
    b.add_argument("--version", required=True, help="the version the bundle installs, e.g. 0.2.0")
    b.add_argument("--package", default="pitbox", help="the main distribution (default pitbox)")
    b.add_argument("--out", type=Path, required=True, help="the bundle file to write")
    b.add_argument("wheels", nargs="+", type=Path, help="the wheels (pitbox and its dependencies)")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            return keygen(args.out)
        man = build(args.wheels, version=args.version, package=args.package,
                    private_pem=args.key.read_bytes(), out=args.out)
    except (OSError, UpdateError) as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {man.package} {man.version}, {len(man.wheels)} wheels, signed")
    return 0


def keygen(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    private, public = new_fleet_key()
    key_path = out / "fleet-update.pem"
    if key_path.exists():
        print(f"build: error: {key_path} exists; not overwriting a fleet key", file=sys.stderr)
        return 1
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    (out / "fleet-update.pub.pem").write_bytes(public)
    print(f"{key_path} (keep it secret) and {out / 'fleet-update.pub.pem'} (goes on every box)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
