"""Shared pieces for the update tests (no tests here): tiny wheels built on the spot, a fleet
key per test session, and the command line of a real `pitbox update` run.

The tiny package `tinybox` stands in for pitbox: `python -m tinybox --health-file F` writes the
health report a gateway of that version would write (healthy or not, uplink connected or not,
after `ready_after_s`, as built), then exits. Used as the restart command, it proves the slot
that `current` points at really runs. Each slot also gets a `bin/pitbox` (the slot's updater,
what the systemd units run): a working one hands its arguments to this checkout's pitbox, a
broken one fails at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zipfile
from pathlib import Path

from firmware.update.bundle import build
from firmware.update.manifest import new_fleet_key

MAIN = '''
import json, os, sys, time
from tinybox import HEALTHY, READY_AFTER_S, UPLINK, __version__
path = sys.argv[sys.argv.index("--health-file") + 1]
time.sleep(READY_AFTER_S)  # a gateway takes a moment to bind, open and report
doc = {"version": __version__, "ready": True, "healthy": HEALTHY,
       "uplink_connected": HEALTHY and UPLINK,
       "state": ("online" if UPLINK else "offline") if HEALTHY else "error",
       "session_live": False, "pid": os.getpid()}
with open(path + ".tmp", "w") as fh:
    json.dump(doc, fh)
os.replace(path + ".tmp", path)
'''

UPDATER = '''
import os, sys
from tinybox import UPDATER
def main():
    if UPDATER is None:
        sys.exit("pitbox: error: this slot's updater is broken")
    os.execv(UPDATER, [UPDATER, "-m", "pitbox", *sys.argv[1:]])
'''


def tiny_wheel(out_dir: Path, version: str, *, healthy: bool = True, uplink: bool = True,
               ready_after_s: float = 0.0, broken_updater: bool = False) -> Path:
    """A minimal, valid pure-Python wheel of `tinybox` `version`."""
    dist = f"tinybox-{version}.dist-info"
    updater = None if broken_updater else sys.executable
    files = {
        "tinybox/__init__.py": (f"__version__ = {version!r}\nHEALTHY = {healthy!r}\n"
                                f"UPLINK = {uplink!r}\nREADY_AFTER_S = {ready_after_s!r}\n"
                                f"UPDATER = {updater!r}\n"),
        "tinybox/__main__.py": MAIN,
        "tinybox/updater.py": UPDATER,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: tinybox\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: pitbox-tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\npitbox = tinybox.updater:main\n",
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"tinybox-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


class Fleet:
    """The fleet owner's side: a signing key and bundles of tiny wheels."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.private_pem, self.public_pem = new_fleet_key()
        self.public_path = workdir / "fleet-update.pub.pem"
        self.public_path.write_bytes(self.public_pem)

    def bundle(self, version: str, *, healthy: bool = True, uplink: bool = True,
               ready_after_s: float = 0.0, broken_updater: bool = False,
               private_pem: bytes | None = None) -> Path:
        more = "".join(["" if uplink else "-offline", f"-slow{ready_after_s}" if ready_after_s
                        else "", "-badupdater" if broken_updater else ""])
        variant = ("" if healthy else "-broken") + more
        wheel = tiny_wheel(self.dir / f"wheels-{version}-{healthy}{more}", version, healthy=healthy,
                           uplink=uplink, ready_after_s=ready_after_s,
                           broken_updater=broken_updater)
        out = self.dir / f"tinybox-{version}{variant}.pbxupd"
        build([wheel], version=version, package="tinybox", out=out,
              private_pem=private_pem or self.private_pem)
        return out


def update_cmd(bundle: Path, root: Path, fleet: Fleet, *extra: str) -> list[str]:
    """`pitbox update` as the timer runs it, with tinybox as the gateway it restarts."""
    health = root / "health.json"
    restart = f"{root}/current/bin/python -m tinybox --health-file {health}"
    return [sys.executable, "-m", "pitbox", "update", "--bundle", str(bundle), "--root", str(root),
            "--public-key", str(fleet.public_path), "--health-file", str(health),
            "--restart-cmd", restart, "--pip", sys.executable, "--deadline", "20",
            "--uplink-grace", "0", *extra]


def running_version(root: Path) -> str:
    """Ask the slot `current` points at which tinybox it runs (really runs it)."""
    import subprocess

    out = subprocess.run([str(root / "current" / "bin" / "python"), "-c",
                          "import tinybox; print(tinybox.__version__)"],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


def health_doc(root: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((root / "health.json").read_text())
    return doc
