"""Rotating the device key without a moment when the box cannot sign in.

1. `pitbox provision --rotate` makes `device_key.next.pem` (0600) beside the active key and
   prints the registration line for its public half. The gateway keeps using the old key.
2. The fleet owner registers the new public key (`pitbox devices add ID --public-key …`).
3. `pitbox provision --commit-rotation --config F` confirms it: the box connects to the
   broker from F, signing its JWT with the *new* key. Only if the broker accepts it (so the
   registry holds the new key) does the new key replace the old one, which is then deleted;
   a refused connection keeps the old key and says so. Restart the gateway afterwards.

"Registered" is thus proven by the broker itself, never assumed.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from firmware.provision.keys import (
    ProvisionError,
    ensure_device_key,
    public_pem,
    secure_existing_key,
)
from gateway.config import Config
from gateway.errors import ClockNotSynced
from gateway.uplink import auth

ACTIVE, NEXT = "device_key.pem", "device_key.next.pem"


def start_rotation(state_dir: Path) -> tuple[Path, bool]:
    """Make the next key unless it exists. Returns (its public key path, whether made)."""
    if not (state_dir / ACTIVE).exists():
        raise ProvisionError(f"no device key in {state_dir} to rotate; run `pitbox provision`")
    made = ensure_device_key(state_dir / NEXT)
    pub = state_dir / "device_key.next.pub.pem"
    pub.write_bytes(public_pem(state_dir / NEXT))
    return pub, made


def broker_accepts(key_pem: bytes, cfg: Config, *, timeout_s: float = 10.0) -> tuple[bool, str]:
    """Connect once to the configured broker with a JWT signed by `key_pem`: (accepted, why)."""
    dev, up = cfg.device, cfg.uplink
    try:
        token = auth.mint(key_pem, time.time(), dev.project, 300)
    except ClockNotSynced as exc:
        return False, str(exc)
    client = paho.Client(CallbackAPIVersion.VERSION2,
                         client_id=auth.client_id(dev.project, dev.region, dev.registry, dev.id),
                         protocol=paho.MQTTv311, clean_session=True)
    client.username_pw_set("unused", token)
    if up.tls:
        client.tls_set(ca_certs=up.ca_file or None)
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(c: paho.Client, u: object, flags: object, reason: object, props: object) -> None:
        outcome.append("" if not getattr(reason, "is_failure", True) else str(reason))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(up.host, up.port, keepalive=30)
    except OSError as exc:
        return False, f"cannot reach the broker at {up.host}:{up.port}: {exc}"
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            return False, f"no answer from the broker at {up.host}:{up.port} in {timeout_s:.0f} s"
    finally:
        client.disconnect()
        client.loop_stop()
    if outcome[0]:
        return False, f"the broker refused the new key ({outcome[0]})"
    return True, f"the broker at {up.host}:{up.port} accepted the new key"


def commit_rotation(state_dir: Path, cfg: Config, *, timeout_s: float = 10.0) -> str:
    """Make the next key the active one, if the broker accepts it. Returns what happened."""
    nxt = state_dir / NEXT
    if not nxt.exists():
        raise ProvisionError(f"no rotation in progress in {state_dir} (run --rotate first)")
    secure_existing_key(nxt)  # it becomes the active key: 0600 like any other
    ok, why = broker_accepts(nxt.read_bytes(), cfg, timeout_s=timeout_s)
    if not ok:
        raise ProvisionError(f"not rotating: {why}; the old key stays active")
    os.replace(nxt, state_dir / ACTIVE)  # one rename: the old key is gone, the new one active
    os.replace(state_dir / "device_key.next.pub.pem", state_dir / "device_key.pub.pem")
    return why
