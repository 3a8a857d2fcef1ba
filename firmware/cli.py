"""Firmware commands: `pitbox provision` (and its key rotation), `pitbox update`."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from firmware.provision.keys import ProvisionError, ensure_device_key, public_pem
from firmware.provision.rotation import commit_rotation, start_rotation
from firmware.update.cli import register as register_update
from gateway import config
from gateway.uplink.wire import valid_device_id


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("provision", help="first boot: make the device key and id, print the registration line",
                       description="Create this box's RSA device key (0600, never leaves the box) and its "
                       "device id, unless they exist, and print the one line the fleet owner runs to "
                       "register the box. Safe to run again: an existing key is kept.")
    p.add_argument("--state-dir", type=Path, default=Path("."),
                   help="where the key and id live (systemd: /var/lib/pitbox; default: .)")
    p.add_argument("--device-id", help="use this id instead of a generated pitbox-XXXXXX")
    rot = p.add_mutually_exclusive_group()
    rot.add_argument("--rotate", action="store_true",
                     help="make a next key beside the active one and print its registration "
                     "line; the active key stays in use until --commit-rotation")
    rot.add_argument("--commit-rotation", action="store_true",
                     help="sign in to the broker from --config with the next key; only if it "
                     "is accepted (registered) does it replace the old key")
    p.add_argument("--config", help="TOML config naming the broker (for --commit-rotation)")
    p.set_defaults(func=cmd_provision)
    register_update(sub)


def provision(state_dir: Path, device_id: str | None = None) -> tuple[str, Path, bool]:
    """Returns (device id, public key path, whether a new key was made)."""
    id_path = state_dir / "device_id"
    if id_path.exists():
        device_id = id_path.read_text().strip()
    else:
        device_id = device_id or f"pitbox-{secrets.token_hex(3)}"
        if not valid_device_id(device_id):
            raise ProvisionError(f"device id {device_id!r} is not valid (letters first, 3-255 chars)")
        state_dir.mkdir(parents=True, exist_ok=True)
        id_path.write_text(device_id + "\n")
    key_path = state_dir / "device_key.pem"
    made = ensure_device_key(key_path)
    pub_path = state_dir / "device_key.pub.pem"
    pub_path.write_bytes(public_pem(key_path))
    return device_id, pub_path, made


def cmd_provision(args: argparse.Namespace) -> int:
    if args.commit_rotation:
        print(commit_rotation(args.state_dir, config.load(args.config)))
        print("the new key is active: restart the gateway (systemctl restart pitbox-gateway)")
        return 0
    device_id, pub_path, made = provision(args.state_dir, args.device_id)
    if args.rotate:
        pub_path, made = start_rotation(args.state_dir)
        print(f"{'created' if made else 'kept existing'} next device key for {device_id}; "
              "the active key stays in use")
        print("register it, then run `pitbox provision --commit-rotation --config F` on the box:")
        print(f"  pitbox devices add {device_id} --public-key {pub_path.resolve()}")
        return 0
    print(f"{'created' if made else 'kept existing'} device key for {device_id}")
    print("register this box with:")
    print(f"  pitbox devices add {device_id} --public-key {pub_path.resolve()}")
    return 0
