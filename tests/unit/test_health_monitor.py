"""The status task's step: one sample → health → LEDs (MockFactory) + health file + one log
line per change; and how the config picks the LEDs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gateway import config
from gateway.errors import ConfigError
from gateway.status.health import HealthModel, Sample
from gateway.status.leds import LedPanel, NullPanel
from gateway.status.monitor import StatusMonitor, default_report_path, monitor_for


def test_a_step_lights_the_leds_writes_the_report_and_logs_changes_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pitbox.status")
    factory = MockFactory()
    panel = LedPanel((17, 27, 22), pin_factory=factory, clock=lambda: 0.5)
    samples = iter([
        Sample(mono_s=1.0, ready=True, datagrams=10, uplink_connected=True, outbox_pending=3,
               clock_sane=True),
        Sample(mono_s=2.0, ready=True, datagrams=20, uplink_connected=True, outbox_pending=0,
               clock_sane=True),
    ])
    report = tmp_path / "health.json"
    monitor = StatusMonitor(lambda: next(samples), HealthModel(outbox_budget_rows=100), panel,
                            report_path=report)
    monitor.step()
    monitor.step()
    doc = json.loads(report.read_text())
    assert doc["ready"] is True and doc["state"] == "online" and doc["datagrams"] == 20
    assert doc["session_live"] is True and "version" in doc and doc["pid"] > 0
    assert report.stat().st_mode & 0o777 == 0o644
    assert [s.state for s in factory.pin(17).states] == [False, True]  # capturing: steady
    assert [s.state for s in factory.pin(22).states] == [False, True, False]  # booting, then off
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["status: online, capturing, 3 rows buffered"]  # the second step: no change
    factory.reset()


def test_the_config_picks_the_panel_and_names_a_bad_factory(tmp_path: Path) -> None:
    cfg = tmp_path / "box.toml"
    cfg.write_text('[leds]\nfactory = "off"\n')
    assert isinstance(monitor_for(config.load(cfg), lambda: None).panel,  # type: ignore[arg-type,return-value]
                      NullPanel)
    cfg.write_text('[leds]\nfactory = "blinkenlights"\n')
    with pytest.raises(ConfigError) as err:
        monitor_for(config.load(cfg), lambda: None)  # type: ignore[arg-type,return-value]
    assert str(cfg) in str(err.value) and "leds.factory" in str(err.value)
    cfg.write_text("[leds]\ndata_pin = 'GPIO17'\n")
    with pytest.raises(ConfigError, match="leds.data_pin must be int"):
        config.load(cfg)


def test_a_gpio_failure_means_no_leds_not_no_capture(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config.with_overrides(config.load(None), leds={"factory": "mock", "data_pin": 999})
    monitor = monitor_for(cfg, lambda: None)  # type: ignore[arg-type,return-value]
    assert isinstance(monitor.panel, NullPanel)
    assert "LEDs unavailable" in caplog.text


def test_the_health_file_goes_where_systemd_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    assert default_report_path("") is None
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/pitbox")
    assert default_report_path("") == Path("/run/pitbox/health.json")
    assert default_report_path("/tmp/h.json") == Path("/tmp/h.json")
