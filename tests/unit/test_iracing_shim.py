"""The shim's pure parts: what changed is sent (edges at once), its INI config, the buffer."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.shim import config
from gateway.shim.delta import DeltaTracker
from gateway.shim.link import Link


def test_the_first_poll_sends_everything_then_only_what_changed():
    d = DeltaTracker(send_hz=10)
    first = {"LapCompleted": 0, "SessionTime": 1.0, "OnPitRoad": False}
    assert d.changes(first, 0.0) == first
    assert d.changes(first, 1.0) is None
    assert d.changes({**first, "OnPitRoad": True}, 1.01) == {"OnPitRoad": True}


def test_continuous_values_are_rate_limited_but_ride_along_with_an_edge():
    d = DeltaTracker(send_hz=10)
    d.changes({"SessionTime": 0.0, "LapCompleted": 0}, 0.0)
    assert d.changes({"SessionTime": 0.016, "LapCompleted": 0}, 0.016) is None
    assert d.changes({"SessionTime": 0.033, "LapCompleted": 1}, 0.033) == {
        "SessionTime": 0.033, "LapCompleted": 1}
    assert d.changes({"SessionTime": 0.05, "LapCompleted": 1}, 0.05) is None
    assert d.changes({"SessionTime": 0.2, "LapCompleted": 1}, 0.2) == {"SessionTime": 0.2}


def test_a_countdown_turning_non_zero_is_an_edge():
    d = DeltaTracker(send_hz=1)
    d.changes({"PlayerCarTowTime": 0.0}, 0.0)
    assert d.changes({"PlayerCarTowTime": 45.0}, 0.01) == {"PlayerCarTowTime": 45.0}
    assert d.changes({"PlayerCarTowTime": 44.0}, 0.02) is None


def test_the_ini_file_is_read_and_errors_name_key_and_file(tmp_path: Path):
    ini = tmp_path / "shim.ini"
    ini.write_text("[shim]\nbox = 10.0.0.5:20778 ; the box\npairing_key = abcdefghijklmnopq\n"
                   "hz = 30\ndebug = yes\nid = rig-7\n")
    cfg = config.load(str(ini))
    assert cfg.box_address() == ("10.0.0.5", 20778) and cfg.hz == 30.0 and cfg.debug
    assert cfg.shim_id == "rig-7" and cfg.pairing_key == "abcdefghijklmnopq"
    assert config.load(str(ini), hz=120.0, box=None).hz == 120.0
    ini.write_text("[shim]\nhz = fast\n")
    with pytest.raises(ConfigError, match=f"{ini}: shim.hz must be float"):
        config.load(str(ini))
    ini.write_text("[shim]\nboxx = 1.2.3.4:5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'shim.boxx'"):
        config.load(str(ini))
    ini.write_text("[shim]\nproxy = nowhere\n")
    with pytest.raises(ConfigError, match="shim.proxy must be HOST:PORT"):
        config.load(str(ini))


def test_the_buffer_stays_bounded_by_folding_old_telemetry_so_the_last_values_win():
    link = Link(("127.0.0.1", 9), b"k" * 16, "pc", buffer_frames=5)
    link.put("info", {"DriverInfo": {}})
    for lap in range(50):
        link.put("tel", {"vars": {"LapCompleted": lap, f"v{lap % 3}": lap}, "full": False})
    assert len(link.queue) == 5 and link.folded == 46
    assert link.queue[0][0] == "info", "session info is kept while telemetry folds"
    merged: dict[str, int] = {}
    for kind, data in link.queue:
        if kind == "tel":
            merged.update(data["vars"])
    assert merged == {"LapCompleted": 49, "v0": 48, "v1": 49, "v2": 47}


def test_the_shim_imports_nothing_box_side_but_the_irsdk_protocol_modules():
    import subprocess
    import sys
    code = ("import sys, gateway.shim.run, gateway.shim.cli; print(' '.join(sorted(m for m in "
            "sys.modules if m.split('.')[0] in ('gateway', 'cloud', 'firmware', 'pitbox'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    box_side = [m for m in out if not m.startswith("gateway.shim")
                and m not in ("gateway", "gateway.errors", "gateway.decode",
                              "gateway.decode.irsdk", "gateway.decode.irsdk.frames",
                              "gateway.decode.irsdk.header",
                              "gateway.decode.irsdk.variables")]
    assert "gateway.decode.irsdk.frames" in out and box_side == []


def test_the_shim_without_pyirsdk_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]):
    from pitbox.cli import main

    monkeypatch.setitem(sys.modules, "irsdk", None)  # import irsdk now fails, as if absent
    assert main(["shim", "--pairing-key", "k" * 16, "--seconds", "0.1"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("pitbox: error: the shim needs pyirsdk")


def test_pyirsdk_and_pyyaml_are_core_dependencies_so_the_box_bundle_carries_them():
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in reqs}

    assert {"pyirsdk", "pyyaml"} <= names(project["dependencies"])
    assert "pyirsdk" in names(project["optional-dependencies"]["shim"]), "the documented extra"
