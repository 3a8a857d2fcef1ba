"""The CLI is documented: every subcommand is in the README and answers --help."""

import argparse
import re
from pathlib import Path

import pytest

from pitbox.cli import build_parser, main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    out = []
    for name, child in subs[0].choices.items():
        out += leaf_commands(child, prefix + (name,))
    return out


COMMANDS = leaf_commands(build_parser())


def test_the_cli_offers_the_expected_commands():
    names = {" ".join(c) for c in COMMANDS}
    assert {"demo", "gateway run", "replay", "outbox stats", "broker run", "devices add",
            "devices list", "devices revoke", "bridge run", "provision"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_is_in_the_readme(command):
    assert re.search(r"pitbox " + r"\s+".join(map(re.escape, command)) + r"\b", README), command


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pitbox " + " ".join(command))
    assert len(out.splitlines()) > 3


def test_readme_starts_with_the_two_commands():
    head = "\n".join(README.splitlines()[:40])
    assert "make demo" in head and "make test" in head


def test_a_bad_config_is_one_error_line_naming_key_and_file(tmp_path, capsys):
    cfg = tmp_path / "box.toml"
    cfg.write_text("[uplink]\nport = 'high'\n")
    assert main(["outbox", "stats", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"pitbox: error: {cfg}: uplink.port must be int, got str 'high'"


def test_provision_is_idempotent_and_never_prints_the_key(tmp_path, capsys):
    assert main(["provision", "--state-dir", str(tmp_path), "--device-id", "box-01"]) == 0
    first = capsys.readouterr().out
    key = (tmp_path / "device_key.pem").read_bytes()
    assert (tmp_path / "device_key.pem").stat().st_mode & 0o777 == 0o600
    assert "PRIVATE" not in first and "pitbox devices add box-01 --public-key" in first
    assert main(["provision", "--state-dir", str(tmp_path)]) == 0
    assert "kept existing" in capsys.readouterr().out
    assert (tmp_path / "device_key.pem").read_bytes() == key


def test_devices_add_list_revoke(tmp_path, capsys):
    main(["provision", "--state-dir", str(tmp_path / "box"), "--device-id", "box-02"])
    keys = tmp_path / "keys"
    pub = tmp_path / "box" / "device_key.pub.pem"
    assert main(["devices", "add", "box-02", "--public-key", str(pub), "--keys-dir", str(keys)]) == 0
    capsys.readouterr()
    assert main(["devices", "list", "--keys-dir", str(keys)]) == 0
    assert capsys.readouterr().out.split() == ["box-02"]
    assert main(["devices", "revoke", "box-02", "--keys-dir", str(keys)]) == 0
    assert main(["devices", "revoke", "box-02", "--keys-dir", str(keys)]) == 1
    assert main(["devices", "add", "../x", "--public-key", str(pub), "--keys-dir", str(keys)]) == 1
    assert "not valid" in capsys.readouterr().err
