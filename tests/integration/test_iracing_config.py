"""The box's [relay] section: on only with a real pairing key; errors name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError
from gateway.service import Gateway


def test_an_enabled_relay_without_a_real_pairing_key_is_a_config_error(tmp_path: Path):
    toml = tmp_path / "box.toml"
    toml.write_text(f'[outbox]\npath = "{tmp_path / "o.sqlite"}"\n'
                    '[relay]\nenabled = true\npairing_key = "short"\n')
    with pytest.raises(ConfigError, match=rf"^{toml}: relay.pairing_key must be at least 16"):
        Gateway(config.load(toml))
    toml.write_text('[relay]\nport = "x"\n')
    with pytest.raises(ConfigError, match=rf"^{toml}: relay.port must be int"):
        config.load(toml)


def test_the_relay_is_off_by_default(tmp_path: Path):
    cfg = config.load(None)
    assert cfg.relay.enabled is False and cfg.relay.port == 20778
