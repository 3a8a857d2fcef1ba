import dataclasses
import re
from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "pitbox.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    cfg = config.load(None)
    assert cfg.normalize.sample_hz == 10.0
    assert cfg.uplink.prefix == "/devices"


def test_file_overrides_defaults_and_keeps_the_rest(tmp_path):
    cfg = config.load(write(tmp_path, '[uplink]\nport = 8883\n[capture.rig_names]\n"10.0.0.2" = "rig-a"\n'))
    assert cfg.uplink.port == 8883
    assert cfg.uplink.host == "127.0.0.1"
    assert cfg.capture.rig_names == {"10.0.0.2": "rig-a"}


def test_integer_is_accepted_for_a_float(tmp_path):
    assert config.load(write(tmp_path, "[normalize]\nsample_hz = 5\n")).normalize.sample_hz == 5.0


@pytest.mark.parametrize("text,key", [
    ("[uplink]\nprot = 1\n", "uplink.prot"),
    ("[nope]\n", "nope"),
    ('[uplink]\nport = "1883"\n', "uplink.port"),
    ("[uplink]\ntls = 1\n", "uplink.tls"),
    ("[uplink]\nport = true\n", "uplink.port"),
    ("[outbox]\ncommit_window_ms = -5\n", "outbox.commit_window_ms"),
    ("[capture.rig_names]\n\"10.0.0.2\" = 3\n", "capture.rig_names"),
    ("uplink = 3\n", "uplink"),
])
def test_bad_config_names_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert key in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("section,key,value,says", [
    ("outbox", "commit_window_ms", 0, "in (0, 50]"),
    ("outbox", "commit_window_ms", 51, "in (0, 50]"),
    ("uplink", "inflight", 0, ">= 1"),
    ("uplink", "messages_per_s", 0, "in (0, 100]"),
    ("uplink", "messages_per_s", 100.5, "in (0, 100]"),
    ("uplink", "jwt_minutes", 0, "in [1, 1440]"),
    ("uplink", "jwt_minutes", 1441, "in [1, 1440]"),
    ("uplink", "batch_records", 0, ">= 1"),
    ("uplink", "ack_timeout_s", 0.5, ">= 1"),
    ("outbox", "budget_mb", -1, "must not be negative"),
    ("outbox", "min_free_mb", -0.5, "must not be negative"),
])
def test_a_value_out_of_range_names_the_key_the_file_and_the_range(tmp_path, section, key,
                                                                     value, says):
    path = write(tmp_path, f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {section}.{key} must ") and says in message
    assert re.search(rf", got {re.escape(str(value))}(\.0)?$", message)  # ints of float keys


@pytest.mark.parametrize("section,key,value", [
    ("outbox", "commit_window_ms", 1), ("outbox", "commit_window_ms", 50),
    ("uplink", "inflight", 1), ("uplink", "messages_per_s", 100), ("uplink", "messages_per_s", 0.5),
    ("uplink", "jwt_minutes", 1), ("uplink", "jwt_minutes", 1440), ("uplink", "batch_records", 1),
    ("outbox", "budget_mb", 0), ("outbox", "min_free_mb", 0), ("uplink", "ack_timeout_s", 1),
])
def test_the_edges_of_each_range_are_accepted(tmp_path, section, key, value):
    cfg = config.load(write(tmp_path, f"[{section}]\n{key} = {value}\n"))
    assert getattr(getattr(cfg, section), key) == value


def test_missing_file_and_bad_toml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[uplink\n"))


def test_the_readme_config_block_loads_and_shows_the_real_defaults(tmp_path):

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert block, "README lost its config block"
    path = tmp_path / "readme.toml"
    path.write_text(block.group(1))
    documented, defaults = config.load(path), config.load(None)
    assert documented.source == str(path)
    for field in dataclasses.fields(config.Config):
        if field.name != "source":
            assert getattr(documented, field.name) == getattr(defaults, field.name), field.name
