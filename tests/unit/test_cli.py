"""The CLI is documented: every subcommand is in the README and answers --help."""

import argparse
import json
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


def test_every_command_the_readme_lists_exists():
    listed = set(re.findall(r"^\| `pitbox ([a-z0-9 ]+?)(?: [A-Z\[-]|`)", README, re.MULTILINE))
    assert listed, "the README's command table went missing"
    assert listed <= {" ".join(c) for c in COMMANDS}


SAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "sim" / "sample_session.pbxcap"


def test_f1_dump_prints_one_line_per_datagram(capsys):
    assert main(["f1", "dump", str(SAMPLE), "--limit", "5"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 5
    assert "session" in lines[0] and "track=silverstone" in lines[0]
    assert "f1 dump: 5 datagrams; malformed: none" in err


def test_f1_dump_json_and_a_malformed_raw_datagram(tmp_path, capsys):
    assert main(["f1", "dump", str(SAMPLE), "--limit", "1", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["header"]["packet_format"] == 2024 and first["body"]["total_laps"] == 5
    raw = tmp_path / "short.bin"
    raw.write_bytes(b"\xe8\x07" + bytes(10))
    assert main(["f1", "dump", str(raw)]) == 0
    out, err = capsys.readouterr()
    assert "MALFORMED short_header" in out and "malformed: short_header 1" in err


def test_replay_of_a_missing_file_is_one_clear_error(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "gone.pbxcap")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pitbox: error:") and "gone.pbxcap" in err


def test_gateway_without_a_device_key_names_the_key_and_says_what_to_do(tmp_path, capsys):
    cfg = tmp_path / "box.toml"
    cfg.write_text(f'[device]\nkey_path = "{tmp_path / "missing.pem"}"\n')
    assert main(["replay", str(SAMPLE), "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "device.key_path" in err and str(cfg) in err and "pitbox provision" in err
