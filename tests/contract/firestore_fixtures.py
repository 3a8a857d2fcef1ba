"""Google's Firestore emulator for tests: one JVM per test session, emptied before each test.

A server named by `FIRESTORE_EMULATOR_HOST` is reused; otherwise the fixture starts one on a
free loopback port and stops its process group at the end. A machine without the emulator
FAILS these tests with the install instructions: passing on a fake would prove nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store.emulator import EmulatorMissingError, FirestoreEmulator

__all__ = ["PROJECT", "firestore_emulator", "firestore_host"]

PROJECT = "demo-pitbox-test"


class _Running:
    """A server someone else started: reset works, stop is theirs."""

    def __init__(self, host_port: str) -> None:
        self.host_port = host_port

    def reset(self, project: str) -> None:
        emu = FirestoreEmulator(Path(os.devnull))
        emu.port = int(self.host_port.rsplit(":", 1)[1])
        emu.reset(project)


@pytest.fixture(scope="session")
def firestore_emulator(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator | _Running]:
    existing = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if existing:
        yield _Running(existing)
        return
    emu = FirestoreEmulator(tmp_path_factory.mktemp("firestore") / "emulator.log")
    try:
        emu.start()
    except EmulatorMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIRESTORE_EMULATOR_HOST", emu.host_port)
        try:
            yield emu
        finally:
            emu.stop()


@pytest.fixture
def firestore_host(firestore_emulator: FirestoreEmulator | _Running) -> str:
    """The emulator's host:port, with project `PROJECT` emptied for this test."""
    firestore_emulator.reset(PROJECT)
    return firestore_emulator.host_port
