"""Google's Firestore emulator as a child process (a thin shell over one process group).

For tests and benchmarks only: production talks to Firestore itself. The emulator ships with
the machine image (Debian package `google-cloud-cli-firestore-emulator`, run on OpenJDK 17);
nothing is downloaded. We run `java -cp <jar> …CloudFirestore start` directly rather than the
`cloud_firestore_emulator` wrapper, which does not exec java and would leave an orphan JVM.
The JVM logs a lot: its output goes to a file, never to an unread pipe.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from cloud.store.errors import StoreError

HOST = "127.0.0.1"
PACKAGE = "google-cloud-cli-firestore-emulator"
JAR_CANDIDATES = (
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar",
    "/usr/share/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar",
)
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
HOW_TO_INSTALL = (
    f"Google's Firestore emulator is missing: it comes with the Debian package {PACKAGE} "
    "(from Google's Cloud SDK apt repository, https://packages.cloud.google.com/apt, "
    f"`apt-get install {PACKAGE} openjdk-17-jre-headless`), or set $PITBOX_FIRESTORE_JAR to "
    "its cloud-firestore-emulator.jar. The Firestore tests need it and fail without it.")


class EmulatorMissingError(StoreError):
    """The emulator's jar or java is not installed; the message says how to install them."""


def find_emulator() -> tuple[str, str]:
    """(java, jar) or `EmulatorMissingError` saying how to install what is missing."""
    java = shutil.which("java")
    jars = [os.environ.get("PITBOX_FIRESTORE_JAR", ""), *JAR_CANDIDATES]
    jar = next((j for j in jars if j and Path(j).is_file()), None)
    if java is None or jar is None:
        missing = " and ".join(n for n, v in (("java", java), ("the emulator jar", jar)) if not v)
        raise EmulatorMissingError(f"{missing} not found. {HOW_TO_INSTALL}")
    return java, jar


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class FirestoreEmulator:
    """The emulator on a free loopback port; a context manager. `host_port` is what
    `FIRESTORE_EMULATOR_HOST` must say; `reset(project)` empties a project's default db."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = Path(log_path)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def host_port(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> Self:
        java, jar = find_emulator()
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [java, "-Duser.language=en", "-cp", jar, MAIN_CLASS, "start",
             f"--host={HOST}", f"--port={self.port}"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True)  # its own process group: stop() ends every JVM thread
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://{self.host_port}/", timeout=1) as r:
                    if r.read().strip() == b"Ok":
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        code = self._proc.poll() if self._proc is not None else None
        self.stop()
        why = f"exited with {code}" if code is not None else f"not ready after {START_TIMEOUT_S} s"
        raise StoreError(f"Firestore emulator {why}; log: {self.log_path}")

    def reset(self, project: str) -> None:
        """Delete every document of `project`'s default database."""
        url = (f"http://{self.host_port}/emulator/v1/projects/{project}"
               "/databases/(default)/documents")
        req = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 200:
                raise StoreError(f"emulator reset of {project} answered {r.status}")

    def stop(self) -> None:
        """SIGTERM to the process group, wait, SIGKILL after 10 s. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
