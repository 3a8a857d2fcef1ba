"""Apply a signed bundle: verify → refuse downgrades → wait for no live session → install into
the inactive slot → one-rename switch → restart → health gate → keep, or switch back.

Every refusal leaves the running slot untouched and says so in one line naming the version that
still runs. Before switching, the trial is written to state.json and `good` points at the slot
being left; if the updater dies during the trial (pulled plug, SIGKILL), `recover` switches back
to that slot, so a half-checked version is never kept by accident. At boot
pitbox-update-recover.service runs `recover` from the `good` slot before the gateway starts (the
untested slot's own updater may be what is broken); a later update run does it too, but never
while a session is live: the trial version is carrying that race, and is rolled back after it.

If the running version's uplink is connected when the update starts, the new one must connect
within the deadline too: "capturing but offline" is only good enough where it was offline
before, or a version with a broken uplink would pass the gate and raise the floor above the
last version that could reach the broker.
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
from firmware.update.gate import session_live, uplink_connected_now, wait_healthy
from firmware.update.installer import SlotInstaller
from firmware.update.manifest import BadBundleError, Manifest, UpdateError, parse_version
from firmware.update.slots import Slots

log = logging.getLogger("pitbox.update")

UPDATED, UP_TO_DATE, POSTPONED, INSTALLED = "updated", "up to date", "postponed", "installed"
ROLLED_BACK, NOTHING_TO_RECOVER = "rolled back", "nothing to recover"


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
            if self._recover() == POSTPONED:  # an unconfirmed trial is carrying a live session
                return POSTPONED
            return self._apply(bundle)

    def recover(self) -> str:
        """`pitbox update --recover`: undo an interrupted trial (ROLLED_BACK), or say there was
        none (NOTHING_TO_RECOVER), or POSTPONED while a session is live."""
        with self.slots.locked():
            return self._recover()

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
            self.slots.mark_good(target)
            log.info("update: installed %s into slot %s and made it current", man.version, target)
            return INSTALLED
        if session_live(self.health_file):  # a session began while we installed
            log.info("update: a session started; %s waits in slot %s", man.version, target)
            return POSTPONED
        need_uplink = uplink_connected_now(self.health_file)
        if need_uplink:
            log.info("update: %s has its uplink connected; %s must connect within %.0f s",
                     self.running(), man.version, self.deadline_s)
        return self._trial(man.version, target, current, floor, need_uplink=need_uplink)

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

    def _trial(self, version: str, target: str, previous: str | None, floor: str, *,
               need_uplink: bool) -> str:
        old = self.running()
        if previous is not None and self.slots.info(previous) is not None:
            self.slots.mark_good(previous)  # what recovery runs if the plug is pulled from here on
        self.slots.save_state({"floor": floor, "trial": {"slot": target, "version": version,
                                                         "previous": previous}})
        self.slots.switch(target)
        log.info("update: switched to %s (slot %s); restarting the gateway", version, target)
        ok, why = self._restart_and_wait(version, need_uplink=need_uplink)
        if ok:
            self.slots.save_state({"floor": version})  # the trial is over: from here it is good
            self.slots.mark_good(target)
            log.info("update: now running %s (slot %s): %s", version, target, why)
            return UPDATED
        if previous is not None:
            self.slots.switch(previous)
            self._restart()
        self.slots.save_state({"floor": floor})
        raise UpdateError(f"update to {version} failed its health check ({why}); switched back, "
                          f"still running {old}")

    def _recover(self) -> str:
        """Finish what a killed updater left: stray temp links, an unconfirmed trial."""
        for stray in (self.root / "current.new", self.root / "good.new"):
            if stray.is_symlink():
                stray.unlink()
        state = self.slots.state()
        trial = state.get("trial")
        rest = {k: v for k, v in state.items() if k != "trial"}
        if not isinstance(trial, dict):
            current = self.slots.current()
            if current is not None and self.slots.info(current) is not None:
                self.slots.mark_good(current)  # no trial: what runs passed (or predates `good`)
            return NOTHING_TO_RECOVER
        previous = trial.get("previous")
        if not isinstance(previous, str) or self.slots.info(previous) is None:
            log.warning("update: an interrupted update to %s has no complete slot to go back to; "
                        "keeping it (floor stays %s)", trial.get("version"), rest.get("floor"))
            self.slots.save_state(rest)
            return NOTHING_TO_RECOVER
        if self.slots.current() != previous:
            if session_live(self.health_file):
                log.warning("update: the interrupted update to %s is carrying a live session; "
                            "rolling back after it (running %s)", trial.get("version"),
                            self.running())
                return POSTPONED
            self.slots.switch(previous)
            failed = self._restart()
            if failed:
                log.error("update: switched back to slot %s but the restart failed: %s",
                          previous, failed)
        self.slots.mark_good(previous)
        self.slots.save_state(rest)
        log.warning("update: an interrupted update to %s was rolled back; running %s",
                    trial.get("version"), self.running())
        return ROLLED_BACK

    def _restart_and_wait(self, version: str, *, need_uplink: bool) -> tuple[bool, str]:
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
                            uplink_grace_s=self.uplink_grace_s, need_uplink=need_uplink,
                            poll_s=self.poll_s)

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
