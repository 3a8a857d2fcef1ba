"""Shared pieces for the update tests (no tests here): tiny wheels built on the spot, a fleet
key per test session, and the command line of a real `pitbox update` run.

The tiny package `tinybox` stands in for pitbox: `python -m tinybox --health-file F` writes the
health report a gateway of that version would write (healthy or not, as built), then exits.
Used as the restart command, it proves the slot that `current` points at really runs.
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
import json, os, sys
from tinybox import HEALTHY, __version__
path = sys.argv[sys.argv.index("--health-file") + 1]
doc = {"version": __version__, "ready": True, "healthy": HEALTHY, "uplink_connected": HEALTHY,
       "state": "online" if HEALTHY else "error", "session_live": False, "pid": os.getpid()}
with open(path + ".tmp", "w") as fh:
    json.dump(doc, fh)
os.replace(path + ".tmp", path)
'''


def tiny_wheel(out_dir: Path, version: str, *, healthy: bool = True) -> Path:
    """A minimal, valid pure-Python wheel of `tinybox` `version`."""
    dist = f"tinybox-{version}.dist-info"
    files = {
        "tinybox/__init__.py": f"__version__ = {version!r}\nHEALTHY = {healthy!r}\n",
        "tinybox/__main__.py": MAIN,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: tinybox\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: pitbox-tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
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

    def bundle(self, version: str, *, healthy: bool = True, private_pem: bytes | None = None) -> Path:
        wheel = tiny_wheel(self.dir / f"wheels-{version}-{healthy}", version, healthy=healthy)
        out = self.dir / f"tinybox-{version}{'' if healthy else '-broken'}.pbxupd"
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
