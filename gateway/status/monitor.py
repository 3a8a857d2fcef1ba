"""The status task: sample the service's counters, judge its health, show it on the LEDs and
publish it in the health file (what the updater reads: "is a session live?", "is the new
version healthy?").

Runs on the gateway's asyncio loop. Each step is short and never awaits I/O that could hang:
a few pin writes every `refresh_s`, and once per `sample_s` one SQLite count (through the
`sample` callable) plus a small atomic write of the health file (meant for /run, a tmpfs).
Any failure here is logged and counted; it never stops capture.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from gpiozero.exc import GPIOZeroError

from gateway.config import Config
from gateway.errors import ConfigError
from gateway.status.health import BOOTING, Health, HealthModel, Sample
from gateway.status.leds import NullPanel, Panel, UnknownPinFactoryError, make_panel
from gateway.status.sdnotify import notify

log = logging.getLogger("pitbox.status")


def pitbox_version() -> str:
    try:
        return version("pitbox")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def write_report(path: Path, health: Health, *, ready: bool, pid: int, ver: str) -> None:
    """Replace `path` atomically, so a reader never sees half a file."""
    doc = {"version": ver, "pid": pid, "ready": ready, **health.to_dict()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)  # not secret; the updater runs as root without CAP_DAC_OVERRIDE
    os.replace(tmp, path)


def default_report_path(configured: str) -> Path | None:
    """The configured path; else $RUNTIME_DIRECTORY/health.json when systemd made one."""
    if configured:
        return Path(configured)
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / "health.json" if runtime else None


class StatusMonitor:
    def __init__(self, sample: Callable[[], Sample], model: HealthModel, panel: Panel, *,
                 report_path: Path | None, refresh_s: float = 0.05, sample_s: float = 1.0) -> None:
        self._sample = sample
        self.model = model
        self.panel = panel
        self.report_path = report_path
        self.refresh_s, self.sample_s = refresh_s, sample_s
        self.health = BOOTING
        self.failures = 0
        self._version = pitbox_version()

    def step(self) -> Health:
        """Sample, judge, show, report. Logs a line whenever the state changes."""
        s = self._sample()
        health = self.model.update(s)
        if (health.state, health.capturing) != (self.health.state, self.health.capturing):
            line = (f"{health.state.value}, "
                    f"{'capturing' if health.capturing else 'waiting for game data'}, "
                    f"{health.outbox_pending} rows buffered")
            log.info("status: %s", line)
            notify(f"STATUS={line}")  # what `systemctl status pitbox-gateway` shows
        self.health = health
        self.panel.show(health)
        if self.report_path is not None:
            write_report(self.report_path, health, ready=s.ready, pid=os.getpid(),
                         ver=self._version)
        return health

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sample = loop.time()
        while True:
            try:
                if loop.time() >= next_sample:
                    next_sample = loop.time() + self.sample_s
                    self.step()
                else:
                    self.panel.refresh()
            except Exception:  # a task's top level: the LEDs or /run failing must not stop capture
                self.failures += 1
                if self.failures <= 3 or self.failures % 1000 == 0:
                    log.exception("status: update failed (%d so far); capture goes on",
                                  self.failures)
            await asyncio.sleep(self.refresh_s)


def monitor_for(cfg: Config, sample: Callable[[], Sample]) -> StatusMonitor:
    """The monitor `cfg` asks for. A missing or busy GPIO chip is a warning, not a reason to
    stop capturing; an unknown factory name is a config error."""
    leds = cfg.leds
    pins = (leds.data_pin, leds.uplink_pin, leds.alarm_pin)
    panel: Panel
    try:
        panel = make_panel(leds.factory, pins, clock=time.monotonic, active_high=leds.active_high)
    except UnknownPinFactoryError as exc:
        raise ConfigError(f"{cfg.source}: leds.factory: {exc}") from exc
    except (GPIOZeroError, ImportError, OSError, RuntimeError, ValueError) as exc:
        # no GPIO chip, pin in use, no permission, lgpio missing: capture matters more
        log.warning("status: LEDs unavailable (%s: %s); running without them",
                    type(exc).__name__, exc)
        panel = NullPanel()
    model = HealthModel(outbox_budget_rows=max(1, cfg.status.outbox_budget_rows))
    return StatusMonitor(sample, model, panel,
                         report_path=default_report_path(cfg.status.health_file))
