"""Compile the Mosquitto auth plugin ``pitbox_auth.c`` into a shared object with gcc.

Run as ``python -m cloud.broker.build`` (``make plugin``); prints the path of the ``.so``.
Needs Debian's mosquitto-dev, libssl-dev and libcjson-dev (``make deps``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cloud.broker.errors import BrokerError

SOURCE = Path(__file__).resolve().with_name("pitbox_auth.c")
DEFAULT_OUT_DIR = Path(__file__).resolve().parents[2] / "build"
PLUGIN_NAME = "pitbox_auth.so"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]
LIBS = ["-lcrypto", "-lcjson"]


def build_plugin(out_dir: Path | None = None) -> Path:
    """Build ``pitbox_auth.so`` into ``out_dir`` (default ``<repo>/build``) and return its path.

    Skips the compile when the ``.so`` is newer than the source. Raises ``BrokerError`` with
    gcc's stderr when gcc is missing or the compile fails.
    """
    out_dir = DEFAULT_OUT_DIR if out_dir is None else out_dir
    target = out_dir / PLUGIN_NAME
    if target.exists() and target.stat().st_mtime > SOURCE.stat().st_mtime:
        return target
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BrokerError("gcc not found: run `make deps` to install the build tools")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Compile to a temporary name, then rename: a half-written .so must never look fresh.
    tmp = out_dir / (PLUGIN_NAME + ".tmp")
    cmd = [gcc, *CFLAGS, "-o", str(tmp), str(SOURCE), *LIBS]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"building {SOURCE.name} failed: {exc}") from exc
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BrokerError(f"building {SOURCE.name} failed:\n{proc.stderr.strip()}")
    tmp.replace(target)
    return target


def main() -> int:
    """Build the plugin and print its path; one-line error and exit 1 on failure."""
    try:
        print(build_plugin())
    except BrokerError as exc:
        print(f"pitbox: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
