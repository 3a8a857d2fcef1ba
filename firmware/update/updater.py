"""Apply a signed bundle: verify → refuse downgrades → wait for no live session → install into
the inactive slot → one-rename switch → restart → health gate → keep, or switch back.

Every refusal leaves the running slot untouched and says so in one line naming the version that
still runs. Before switching, the trial is written to state.json; if the updater dies during the
trial (pulled plug, SIGKILL), the next run switches back to the known-good slot first and then
tries again, so a half-checked version is never kept by accident.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from firmware.update import bundle as bundles
from firmware.update.gate import session_live, wait_healthy
from firmware.update.installer import SlotInstaller
from firmware.update.manifest import BadBundleError, Manifest, UpdateError, parse_version
from firmware.update.slots import Slots

log = logging.getLogger("pitbox.update")

UPDATED, UP_TO_DATE, POSTPONED, INSTALLED = "updated", "up to date", "postponed", "installed"


@dataclass
class Updater:
    root: Path
    public_pem: bytes
    installer: SlotInstaller
    restart_cmd: Sequence[str] | None  # None: install and switch only (building an image)
    health_file: Path | None
    deadline_s: float = 120.0
    uplink_grace_s: float = 30.0
    poll_s: float = 0.5

    def __post_init__(self) -> None:
        self.slots = Slots(self.root)

    def running(self) -> str:
        name = self.slots.current()
        info = self.slots.info(name) if name else None
        return f"{info.version} (slot {name})" if info else "the version installed before slots"

    def apply(self, bundle: Path) -> str:
        with self.slots.locked():
            self.recover()
            return self._apply(bundle)

    def _apply(self, bundle: Path) -> str:
        try:
            man = bundles.open_bundle(bundle, self.public_pem)
        except BadBundleError as exc:
            raise UpdateError(f"update refused, {bundle.name}: {exc}; "
                              f"still running {self.running()}") from exc
        current = self.slots.current()
        info = self.slots.info(current) if current else None
        floor = max([self.slots.state().get("floor", "0")] + ([info.version] if info else []),
                    key=parse_version)
        if parse_version(man.version) < parse_version(floor):
            raise UpdateError(f"update refused, {bundle.name}: version {man.version} is older "
                              f"than {floor} (no downgrades); still running {self.running()}")
        if info is not None and parse_version(man.version) == parse_version(info.version):
            log.info("update: %s is already running; nothing to do", man.version)
            return UP_TO_DATE
        if session_live(self.health_file):
            log.info("update: a session is live; %s postponed (still running %s)",
                     man.version, self.running())
            return POSTPONED
        target = self.slots.other(current)
        sha = _sha256(bundle)
        self._install(bundle, man, target, sha)
        if self.restart_cmd is None:
            self.slots.switch(target)
            self.slots.save_state({"floor": man.version})
            log.info("update: installed %s into slot %s and made it current", man.version, target)
            return INSTALLED
        if session_live(self.health_file):  # a session began while we installed
            log.info("update: a session started; %s waits in slot %s", man.version, target)
            return POSTPONED
        return self._trial(man.version, target, current, floor)

    def _install(self, bundle: Path, man: Manifest, target: str, sha: str) -> None:
        ready = self.slots.info(target)
        if ready is not None and ready.bundle_sha256 == sha:
            log.info("update: slot %s already holds %s; not installing again", target, man.version)
            return
        log.info("update: %s verified (%d wheels); installing into slot %s",
                 man.version, len(man.wheels), target)
        slot = self.slots.clear(target)
        staging = self.root / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            wheels = bundles.extract_wheels(bundle, man, staging)
            self.installer.install(slot, wheels)
        except BadBundleError as exc:
            raise UpdateError(f"update refused: {exc}; still running {self.running()}") from exc
        except UpdateError as exc:
            raise UpdateError(f"update failed: {exc}; still running {self.running()}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.slots.mark_complete(target, man.version, sha)

    def _trial(self, version: str, target: str, previous: str | None, floor: str) -> str:
        old = self.running()
        self.slots.save_state({"floor": floor, "trial": {"slot": target, "version": version,
                                                         "previous": previous}})
        self.slots.switch(target)
        log.info("update: switched to %s (slot %s); restarting the gateway", version, target)
        ok, why = self._restart_and_wait(version)
        if ok:
            self.slots.save_state({"floor": version})
            log.info("update: now running %s (slot %s): %s", version, target, why)
            return UPDATED
        if previous is not None:
            self.slots.switch(previous)
            self._restart()
        self.slots.save_state({"floor": floor})
        raise UpdateError(f"update to {version} failed its health check ({why}); switched back, "
                          f"still running {old}")

    def recover(self) -> None:
        """Finish what a killed updater left: stray temp links, an unconfirmed trial."""
        stray = self.root / "current.new"
        if stray.is_symlink():
            stray.unlink()
        state = self.slots.state()
        trial = state.get("trial")
        if not isinstance(trial, dict):
            return
        previous = trial.get("previous")
        if previous and self.slots.info(previous) is not None:
            if self.slots.current() != previous:
                self.slots.switch(previous)
                self._restart()
            log.warning("update: an interrupted update to %s was rolled back; running %s",
                        trial.get("version"), self.running())
        self.slots.save_state({k: v for k, v in state.items() if k != "trial"})

    def _restart_and_wait(self, version: str) -> tuple[bool, str]:
        if self.health_file is not None:
            try:  # tidy only: the report names its version, an old one never passes the gate
                self.health_file.unlink(missing_ok=True)
            except OSError:
                pass
        failed = self._restart()
        if failed:
            return False, failed
        if self.health_file is None:
            return True, "restarted (no health file to check)"
        return wait_healthy(self.health_file, version, deadline_s=self.deadline_s,
                            uplink_grace_s=self.uplink_grace_s, poll_s=self.poll_s)

    def _restart(self) -> str:
        """Run the restart command; '' on success, else why it failed."""
        if not self.restart_cmd:
            return ""
        try:
            proc = subprocess.run(list(self.restart_cmd), capture_output=True, text=True,
                                  timeout=self.deadline_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"restart command failed: {exc}"
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            return f"restart exited {proc.returncode}{': ' + tail[0] if tail else ''}"
        return ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()
