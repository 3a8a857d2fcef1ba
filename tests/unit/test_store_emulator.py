"""Without Google's emulator the Firestore tests fail, and the message says how to install it."""

from __future__ import annotations

import pytest

from cloud.store import emulator
from cloud.store.emulator import EmulatorMissingError, find_emulator


def test_a_missing_jar_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator, "JAR_CANDIDATES", ("/nonexistent/emulator.jar",))
    monkeypatch.delenv("PITBOX_FIRESTORE_JAR", raising=False)
    with pytest.raises(EmulatorMissingError) as info:
        find_emulator()
    msg = str(info.value)
    assert "the emulator jar not found" in msg
    assert "apt-get install google-cloud-cli-firestore-emulator" in msg


def test_a_missing_java_is_named_too(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    jar = tmp_path / "emulator.jar"
    jar.write_bytes(b"")
    monkeypatch.setenv("PITBOX_FIRESTORE_JAR", str(jar))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmulatorMissingError, match="^java not found"):
        find_emulator()
