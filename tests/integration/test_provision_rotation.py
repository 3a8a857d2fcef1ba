"""Provisioning on real files and key rotation proven against the real broker: the new key
replaces the old only once the broker accepts it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from firmware.provision.keys import ProvisionError
from gateway.uplink.auth import mint
from pitbox.cli import main
from tests.integration.broker_fixtures import BrokerHandle


def box_config(tmp_path: Path, broker: BrokerHandle, device_id: str) -> Path:
    cfg = tmp_path / "pitbox.toml"
    cfg.write_text(f"""
[device]
id = "{device_id}"
project = "{broker.audience}"
key_path = "{tmp_path / 'state' / 'device_key.pem'}"
[uplink]
host = "{broker.host}"
port = {broker.port}
""")
    return cfg


def test_provision_is_idempotent_and_keeps_the_key_private(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["provision", "--state-dir", str(state), "--device-id", "prov-01"]) == 0
    key = (state / "device_key.pem").read_bytes()
    assert (state / "device_key.pem").stat().st_mode & 0o777 == 0o600
    for _ in range(3):  # bounded
        assert main(["provision", "--state-dir", str(state), "--device-id", "other-id"]) == 0
    out = capsys.readouterr().out
    assert (state / "device_key.pem").read_bytes() == key
    assert (state / "device_id").read_text().strip() == "prov-01"  # the first id sticks
    assert "PRIVATE" not in out and out.count("pitbox devices add prov-01 --public-key") == 4


def test_an_existing_key_others_can_read_is_closed_to_0600_and_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    assert main(["provision", "--state-dir", str(state), "--device-id", "prov-03"]) == 0
    key_path = state / "device_key.pem"
    key = key_path.read_bytes()
    key_path.chmod(0o644)  # e.g. restored from a backup, or a careless chmod
    caplog.set_level(logging.WARNING, "pitbox.provision")
    assert main(["provision", "--state-dir", str(state)]) == 0
    assert key_path.stat().st_mode & 0o777 == 0o600 and key_path.read_bytes() == key
    assert f"device key {key_path} was mode 0644, open to others; it is 0600 now" in caplog.text
    assert "pitbox provision --rotate" in caplog.text
    caplog.clear()
    key_path.chmod(0o400)  # stricter than 0600 is left alone, and said nothing about
    assert main(["provision", "--state-dir", str(state)]) == 0
    assert key_path.stat().st_mode & 0o777 == 0o400 and "mode" not in caplog.text
    key_path.chmod(0o600)
    assert main(["provision", "--state-dir", str(state), "--rotate"]) == 0
    next_path = state / "device_key.next.pem"
    next_path.chmod(0o660)
    assert main(["provision", "--state-dir", str(state), "--rotate"]) == 0  # the next key too
    assert next_path.stat().st_mode & 0o777 == 0o600


def test_rotation_keeps_the_old_key_until_the_broker_accepts_the_new_one(
        tmp_path: Path, broker: BrokerHandle, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    device_id = "rotate-01"
    assert main(["provision", "--state-dir", str(state), "--device-id", device_id]) == 0
    old_key = (state / "device_key.pem").read_bytes()
    (broker.keys_dir / f"{device_id}.pem").write_bytes((state / "device_key.pub.pem").read_bytes())
    cfg = box_config(tmp_path, broker, device_id)

    assert main(["provision", "--state-dir", str(state), "--rotate"]) == 0
    out = capsys.readouterr().out
    next_pub = state / "device_key.next.pub.pem"
    assert f"pitbox devices add {device_id} --public-key {next_pub}" in out
    assert "PRIVATE" not in out
    assert (state / "device_key.next.pem").stat().st_mode & 0o777 == 0o600
    assert (state / "device_key.pem").read_bytes() == old_key  # still the active key
    next_key = (state / "device_key.next.pem").read_bytes()
    assert main(["provision", "--state-dir", str(state), "--rotate"]) == 0  # idempotent too
    assert (state / "device_key.next.pem").read_bytes() == next_key

    # Not registered yet: the broker refuses the new key, the old one stays.
    assert main(["provision", "--state-dir", str(state), "--commit-rotation",
                 "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "the broker refused the new key" in err and "the old key stays active" in err
    assert (state / "device_key.pem").read_bytes() == old_key

    # Registered: the broker accepts it, the new key becomes the active one, the old is gone.
    (broker.keys_dir / f"{device_id}.pem").write_bytes(next_pub.read_bytes())
    assert main(["provision", "--state-dir", str(state), "--commit-rotation",
                 "--config", str(cfg)]) == 0
    assert "accepted the new key" in capsys.readouterr().out
    assert (state / "device_key.pem").read_bytes() == next_key
    assert (state / "device_key.pem").stat().st_mode & 0o777 == 0o600
    assert not (state / "device_key.next.pem").exists()
    assert old_key not in b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())
    assert mint(next_key, 1_800_000_000, broker.audience, 60, synced=lambda: True)


def test_commit_without_a_rotation_and_rotate_without_a_key_are_clear_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from firmware.provision.rotation import start_rotation

    with pytest.raises(ProvisionError, match="no device key"):
        start_rotation(tmp_path)
    assert main(["provision", "--state-dir", str(tmp_path), "--device-id", "prov-02"]) == 0
    assert main(["provision", "--state-dir", str(tmp_path), "--commit-rotation"]) == 1
    assert "no rotation in progress" in capsys.readouterr().err
