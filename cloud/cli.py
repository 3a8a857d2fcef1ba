"""Cloud commands: `broker run`, `devices add|list|revoke|show|export`, `bridge run`. Thin
shells: each calls one library method."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cloud.bridge.hot import HOT_INTERVAL_S
from cloud.registry.keys_dir import RegistryError
from cloud.registry.registry import Registry
from cloud.store.backends import KINDS, open_store
from cloud.store.base import Store
from gateway.errors import ConfigError

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
    run.add_argument("--no-persistence", dest="persistence", action="store_false",
                     help="forget sessions and queued messages on restart")
    run.add_argument("--no-hold-devices", dest="hold_devices", action="store_false",
                     help="let devices in before a bridge has subscribed (by default they wait: "
                     "Mosquitto does not restore the bridge's shared subscription after a "
                     "restart, and what devices sent meanwhile would be lost)")
    run.set_defaults(func=cmd_broker_run)

    d = sub.add_parser("devices", help="the device registry", description="The device registry: "
                       "one document per device in the store (devices/{id}: its RSA public key, "
                       "revocation, last reported state), exported as the broker's key directory "
                       "(<keys-dir>/<id>.pem, read by the auth plugin at every CONNECT).")
    dsub = d.add_subparsers(dest="devices_command", metavar="COMMAND", required=True)
    add = dsub.add_parser("add", help="register a device's public key",
                          description="Register a device: its id and its RSA public key (PEM). "
                          "Adding it again replaces the key (and lifts a revocation).")
    add.add_argument("device_id")
    add.add_argument("--public-key", type=Path, required=True, help="PEM file from `pitbox provision`")
    _registry_options(add)
    add.set_defaults(func=cmd_devices_add)
    ls = dsub.add_parser("list", help="list registered devices",
                         description="List registered devices, one id per line.")
    ls.add_argument("--all", action="store_true", help="include revoked devices")
    ls.add_argument("--long", action="store_true", help="also key fingerprint, added, last state time")
    _registry_options(ls)
    ls.set_defaults(func=cmd_devices_list)
    rv = dsub.add_parser("revoke", help="revoke a device (refused at its next connect)",
                         description="Mark a device revoked and remove its key file: the broker "
                         "refuses it at its next connect. Its document and last state stay.")
    rv.add_argument("device_id")
    _registry_options(rv)
    rv.set_defaults(func=cmd_devices_revoke)
    sh = dsub.add_parser("show", help="a device's registry document and last state",
                         description="Print a device's document as JSON: key fingerprint, when "
                         "added, whether revoked, and the last state it reported on "
                         "/devices/{id}/state (written by the bridge).")
    sh.add_argument("device_id")
    sh.add_argument("--key", action="store_true", help="include the public key PEM")
    _registry_options(sh)
    sh.set_defaults(func=cmd_devices_show)
    ex = dsub.add_parser("export", help="write the broker's key directory from the registry",
                         description="Make --keys-dir match the registry (e.g. on the broker's "
                         "host): write every registered key, remove revoked ones; with --prune "
                         "also remove .pem files the registry does not know.")
    ex.add_argument("--prune", action="store_true", help="remove unknown .pem files too")
    _registry_options(ex)
    ex.set_defaults(func=cmd_devices_export)

    br = sub.add_parser("bridge", help="the MQTT → store bridge", description="The MQTT → store bridge.")
    brsub = br.add_subparsers(dest="bridge_command", metavar="COMMAND", required=True)
    brun = brsub.add_parser("run", help="subscribe to every device's events and write them to the store",
                            description="Subscribe (MQTT v5 shared subscription) to every device's "
                            "events and write them to the store in the Teamtactics layout. The "
                            "service account's password is read from $PITBOX_BRIDGE_PASSWORD.")
    _store_options(brun, db_help="SQLite store file (default: cloud-state/store.sqlite)")
    brun.add_argument("--host", default="127.0.0.1")
    brun.add_argument("--port", type=int, default=1883)
    brun.add_argument("--username", default="bridge", help="service account name")
    brun.add_argument("--group", default="pitbox-bridge",
                      help="shared-subscription group: instances in one group split the messages")
    brun.add_argument("--client-id", help="MQTT client id, unique per instance (default: "
                      "<group>-<hostname>-<random>, new at every start). A stable id lets a "
                      "restart resume its own session; either way, when an instance goes "
                      "offline a survivor of its group drains its session (takeover)")
    brun.add_argument("--hot-interval", type=float, default=HOT_INTERVAL_S, metavar="S",
                      help="write each hot document (state, info, devices/{id}) at most once "
                      f"per S seconds per instance (default {HOT_INTERVAL_S:g}: the broker "
                      "spreads a device over every instance, so 2 instances stay <= 1 write/s "
                      "per document, Firestore's sustained limit; with N instances use N)")
    brun.add_argument("--prefix", default="/devices", help="topic prefix")
    brun.add_argument("--stats-every", type=float, default=10.0, metavar="S",
                      help="log the counters every S seconds (0: only at exit)")
    brun.set_defaults(func=cmd_bridge_run)


def _store_options(p: argparse.ArgumentParser, *, db_help: str) -> None:
    p.add_argument("--store", choices=KINDS, default="sqlite",
                   help="store backend (default sqlite; firestore uses Application Default "
                   "Credentials, or the emulator named by $FIRESTORE_EMULATOR_HOST)")
    p.add_argument("--db", type=Path, help=db_help)
    p.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-pitbox"),
                   help="Firestore project (default: $GOOGLE_CLOUD_PROJECT or demo-pitbox)")
    p.add_argument("--database", default="(default)", help="Firestore database")


def _registry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS,
                   help=f"the broker's key directory (default {DEFAULT_KEYS})")
    _store_options(p, db_help="SQLite store file (default: store.sqlite next to --keys-dir)")


def _open_store(args: argparse.Namespace, default_db: Path) -> Store:
    db = args.db or default_db
    if args.store == "sqlite":
        db.parent.mkdir(parents=True, exist_ok=True)
    return open_store(args.store, db=db, project=args.project, database=args.database)


@contextmanager
def _registry(args: argparse.Namespace) -> Iterator[Registry]:
    store = _open_store(args, args.keys_dir.parent / "store.sqlite")
    try:
        yield Registry(store, args.keys_dir)
    finally:
        store.close()


def _bridge_password() -> str:
    password = os.environ.get("PITBOX_BRIDGE_PASSWORD", "")
    if not password:
        raise RegistryError("set PITBOX_BRIDGE_PASSWORD to the bridge service account's password")
    return password


def _wait_for_signal(done: threading.Event | None = None) -> None:
    """Until SIGTERM or SIGINT, or until `done` is set (e.g. the bridge's writer ended)."""
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: stop.set())
           for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(0.5):
            if done is not None and done.is_set():
                break
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def cmd_broker_run(args: argparse.Namespace) -> int:
    from cloud.broker.run import Broker

    with Broker(args.workdir, audience=args.audience, keys_dir=args.keys_dir,
                accounts={"bridge": _bridge_password()}, port=args.port,
                persistence=args.persistence, hold_devices=args.hold_devices) as broker:
        print(f"broker listening on {broker.host}:{broker.port} (log: {broker.log_path}); Ctrl-C stops it")
        _wait_for_signal()
    return 0


def cmd_devices_add(args: argparse.Namespace) -> int:
    try:
        pem = args.public_key.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {args.public_key}: {exc.strerror}") from exc
    with _registry(args) as registry:
        doc = registry.add(args.device_id, pem)
    print(f"registered {args.device_id} (key sha256 {doc['key_sha256'][:16]}, "
          f"{args.keys_dir / (args.device_id + '.pem')})")
    return 0


def cmd_devices_list(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        devices = registry.devices(include_revoked=args.all)
    for device_id, doc in devices:
        if not args.long:
            print(device_id)
            continue
        state = _when(doc.get("state_ns")) if "state" in doc else "no state yet"
        print(f"{device_id}\t{doc['key_sha256'][:16]}\tadded {_when(doc.get('added_ns'))}\t"
              f"{'REVOKED' if doc.get('revoked') else 'active'}\tstate {state}")
    return 0


def cmd_devices_revoke(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        registry.revoke(args.device_id)
    print(f"revoked {args.device_id}: refused from its next connect")
    return 0


def cmd_devices_show(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        doc = registry.show(args.device_id)
    if doc is None:
        raise RegistryError(f"no device {args.device_id!r} in the registry")
    if not args.key:
        doc.pop("public_key_pem", None)
    for key in ("added_ns", "revoked_ns", "state_ns"):
        if doc.get(key):
            doc[key.removesuffix("_ns") + "_utc"] = _when(doc[key])
    print(json.dumps(doc, indent=2, sort_keys=True, default=str))
    return 0


def cmd_devices_export(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        done = registry.export(prune=args.prune)
    print(f"exported to {args.keys_dir}: {len(done.written)} written, "
          f"{len(done.removed)} removed")
    return 0


def _when(ns: object) -> str:
    if not isinstance(ns, int):
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_bridge_run(args: argparse.Namespace) -> int:
    from cloud.bridge.run import Bridge, BridgeError

    if not args.hot_interval > 0:
        raise ConfigError(f"--hot-interval must be > 0 seconds, not {args.hot_interval}")
    password = _bridge_password()
    store = _open_store(args, Path("cloud-state/store.sqlite"))
    try:
        bridge = Bridge(store, host=args.host, port=args.port, username=args.username,
                        password=password, group=args.group, client_id=args.client_id,
                        prefix=args.prefix, stats_every_s=args.stats_every,
                        hot_interval_s=args.hot_interval)
    except ConfigError:
        store.close()
        raise
    where = ((args.db or "cloud-state/store.sqlite") if args.store == "sqlite"
             else f"Firestore {args.project}/{args.database}")
    bridge.start()
    print(f"bridge {bridge.client_id}: {args.host}:{args.port} → {where}; Ctrl-C stops it",
          flush=True)
    try:
        _wait_for_signal(bridge.finished)
    finally:
        bridge.stop()
        store.close()
    if bridge.error is not None:  # the writer gave up: exit non-zero, so our supervisor restarts us
        if isinstance(bridge.error, BridgeError):
            raise bridge.error
        raise BridgeError(f"the bridge stopped: {type(bridge.error).__name__}: "
                          f"{bridge.error}") from bridge.error
    return 0
