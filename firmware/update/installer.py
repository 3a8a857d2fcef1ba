"""Put a bundle's wheels into an empty slot: a fresh virtualenv and `pip install --no-index`.

Offline on purpose: every wheel the slot needs is in the (verified) bundle, nothing comes from
an index. Two ways to get pip: seed one into every slot (default; each slot can update the next
one on its own), or use another interpreter's pip (`pip_python`, e.g. /usr/bin/python3 with
Debian's python3-pip) into a slot made without pip — much faster, and what the tests use.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from firmware.update.manifest import UpdateError


class SlotInstaller(Protocol):
    def install(self, slot: Path, wheels: Sequence[Path]) -> None: ...


class VenvInstaller:
    def __init__(self, *, base_python: str = sys.executable, pip_python: str | None = None,
                 timeout_s: float = 900.0) -> None:
        self.base_python = base_python
        self.pip_python = pip_python
        self.timeout_s = timeout_s

    def install(self, slot: Path, wheels: Sequence[Path]) -> None:
        venv = [self.base_python, "-m", "venv"]
        if self.pip_python:
            venv.append("--without-pip")
        self._run([*venv, str(slot)], "create the slot's virtualenv")
        target = slot / "bin" / "python"
        pip = ([self.pip_python, "-m", "pip", "--python", str(target)] if self.pip_python
               else [str(target), "-m", "pip"])
        self._run([*pip, "install", "--no-index", "--no-deps", "--no-cache-dir",
                   "--disable-pip-version-check", "--quiet", *map(str, wheels)],
                  "install the wheels")

    def _run(self, cmd: list[str], what: str) -> None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpdateError(f"could not {what}: {exc}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise UpdateError(f"could not {what} (exit {proc.returncode}): {' | '.join(tail)}")
