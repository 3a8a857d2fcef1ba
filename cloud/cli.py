"""Cloud commands: `broker run`, `devices add|list|revoke`, `bridge run`. Thin shells."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from cloud.registry import keys_dir
from cloud.registry.keys_dir import RegistryError

DEFAULT_KEYS = Path("cloud-state/keys")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("broker", help="the MQTT broker with the pitbox auth plugin",
                       description="The MQTT broker: Mosquitto with the pitbox RS256 JWT auth plugin.")
    bsub = b.add_subparsers(dest="broker_command", metavar="COMMAND", required=True)
    run = bsub.add_parser("run", help="run a local Mosquitto with the auth plugin until Ctrl-C",
                          description="Build the auth plugin if needed, write a Mosquitto config "
                          "into --workdir and run Mosquitto on 127.0.0.1 until SIGTERM or Ctrl-C. "
                          "Devices log in with an RS256 JWT checked against --keys-dir; the bridge "
                          "logs in as a service account whose password is read from "
                          "$PITBOX_BRIDGE_PASSWORD.")
    run.add_argument("--port", type=int, default=1883, help="TCP port on 127.0.0.1 (0: any free port)")
    run.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS, help="device public keys (<id>.pem)")
    run.add_argument("--audience", default="pitbox-demo", help="the project id tokens must name in aud")
    run.add_argument("--workdir", type=Path, default=Path("cloud-state/broker"), help="config and log")
    run.set_defaults(func=cmd_broker_run)

    d = sub.add_parser("devices", help="the device registry", description="The device registry: "
                       "one RSA public key per device, exported as the broker's key directory.")
    dsub = d.add_subparsers(dest="devices_command", metavar="COMMAND", required=True)
    add = dsub.add_parser("add", help="register a device's public key",
                          description="Register a device: its id and its RSA public key (PEM).")
    add.add_argument("device_id")
    add.add_argument("--public-key", type=Path, required=True, help="PEM file from `pitbox provision`")
    add.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS)
    add.set_defaults(func=cmd_devices_add)
    ls = dsub.add_parser("list", help="list registered devices", description="List registered devices.")
    ls.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS)
    ls.set_defaults(func=cmd_devices_list)
    rv = dsub.add_parser("revoke", help="revoke a device (refused at its next connect)",
                         description="Remove a device's key: the broker refuses it at its next connect.")
    rv.add_argument("device_id")
    rv.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS)
    rv.set_defaults(func=cmd_devices_revoke)

    br = sub.add_parser("bridge", help="the MQTT → store bridge", description="The MQTT → store bridge.")
    brsub = br.add_subparsers(dest="bridge_command", metavar="COMMAND", required=True)
    brun = brsub.add_parser("run", help="subscribe to every device's events and write them to the store",
                            description="Subscribe (MQTT v5 shared subscription) to every device's "
                            "events and write them to the store in the Teamtactics layout. The "
                            "service account's password is read from $PITBOX_BRIDGE_PASSWORD.")
    brun.add_argument("--store", choices=["sqlite"], default="sqlite", help="store backend")
    brun.add_argument("--db", type=Path, default=Path("cloud-state/store.sqlite"), help="SQLite store file")
    brun.add_argument("--host", default="127.0.0.1")
    brun.add_argument("--port", type=int, default=1883)
    brun.add_argument("--username", default="bridge", help="service account name")
    brun.set_defaults(func=cmd_bridge_run)


def _bridge_password() -> str:
    password = os.environ.get("PITBOX_BRIDGE_PASSWORD", "")
    if not password:
        raise RegistryError("set PITBOX_BRIDGE_PASSWORD to the bridge service account's password")
    return password


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_broker_run(args: argparse.Namespace) -> int:
    from cloud.broker.run import Broker

    with Broker(args.workdir, audience=args.audience, keys_dir=args.keys_dir,
                accounts={"bridge": _bridge_password()}, port=args.port) as broker:
        print(f"broker listening on {broker.host}:{broker.port} (log: {broker.log_path}); Ctrl-C stops it")
        _wait_for_signal()
    return 0


def cmd_devices_add(args: argparse.Namespace) -> int:
    try:
        pem = args.public_key.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {args.public_key}: {exc.strerror}") from exc
    path = keys_dir.add(args.keys_dir, args.device_id, pem)
    print(f"registered {args.device_id} ({path})")
    return 0


def cmd_devices_list(args: argparse.Namespace) -> int:
    for device in keys_dir.list_devices(args.keys_dir):
        print(device)
    return 0


def cmd_devices_revoke(args: argparse.Namespace) -> int:
    if not keys_dir.revoke(args.keys_dir, args.device_id):
        raise RegistryError(f"no device {args.device_id!r} in {args.keys_dir}")
    print(f"revoked {args.device_id}: refused from its next connect")
    return 0


def cmd_bridge_run(args: argparse.Namespace) -> int:
    from cloud.bridge.run import Bridge
    from cloud.store.sqlite import SqliteStore

    store = SqliteStore(args.db)
    bridge = Bridge(store, host=args.host, port=args.port, username=args.username,
                    password=_bridge_password())
    bridge.start()
    print(f"bridge: {args.host}:{args.port} → {args.db}; Ctrl-C stops it")
    try:
        _wait_for_signal()
    finally:
        bridge.stop()
        store.close()
    return 0
