"""Bundles on disk (signed tar of wheels) and the resumable download from a real HTTP server
on 127.0.0.1 that drops the connection half-way."""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from firmware.update.build import main as build_main
from firmware.update.bundle import extract_wheels, open_bundle
from firmware.update.download import fetch, part_path
from firmware.update.manifest import BadBundleError, UpdateError, new_fleet_key
from tests.integration.test_update_kit import Fleet, tiny_wheel


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)


def test_a_bundle_verifies_and_unpacks_to_the_same_wheels(fleet: Fleet, tmp_path: Path) -> None:
    bundle = fleet.bundle("1.2.0")
    man = open_bundle(bundle, fleet.public_pem)
    assert (man.version, man.package, [w.name for w in man.wheels]) == (
        "1.2.0", "tinybox", ["tinybox-1.2.0-py3-none-any.whl"])
    [out] = extract_wheels(bundle, man, tmp_path / "x")
    assert out.read_bytes() == (tmp_path / "wheels-1.2.0-True" / out.name).read_bytes()


def test_a_bundle_signed_by_another_key_is_refused(fleet: Fleet) -> None:
    rogue_private, _ = new_fleet_key()
    bundle = fleet.bundle("1.2.0", private_pem=rogue_private)
    with pytest.raises(BadBundleError, match="signature does not verify"):
        open_bundle(bundle, fleet.public_pem)


def test_a_tampered_wheel_is_refused(fleet: Fleet) -> None:
    bundle = fleet.bundle("1.2.0")
    data = bytearray(bundle.read_bytes())
    at = data.rindex(b"PK\x05\x06") - 40  # a byte inside the wheel, sizes unchanged
    data[at] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(BadBundleError, match="SHA-256 does not match"):
        open_bundle(bundle, fleet.public_pem)


@pytest.mark.parametrize("keep", [0.999, 0.95, 0.6, 0.2, 0.01])
def test_a_truncated_bundle_is_refused(fleet: Fleet, keep: float) -> None:
    bundle = fleet.bundle("1.2.0")
    with tarfile.open(bundle) as tar:  # cut inside the content, not in tar's zero padding
        last = tar.getmembers()[-1]
        content_end = last.offset_data + last.size
    bundle.write_bytes(bundle.read_bytes()[: int(content_end * keep)])
    with pytest.raises(BadBundleError):
        open_bundle(bundle, fleet.public_pem)


def test_a_file_the_manifest_does_not_list_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    bundle = fleet.bundle("1.2.0")
    with tarfile.open(bundle, "a") as tar:
        tar.add(tiny_wheel(tmp_path / "extra", "6.6.6"), arcname="wheels/evil.whl")
    with pytest.raises(BadBundleError, match="does not list"):
        open_bundle(bundle, fleet.public_pem)


def test_the_build_tool_makes_a_key_and_a_bundle_the_box_accepts(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert build_main(["keygen", "--out", str(keys)]) == 0
    assert (keys / "fleet-update.pem").stat().st_mode & 0o777 == 0o600
    assert build_main(["keygen", "--out", str(keys)]) == 1  # never overwrites a fleet key
    wheel = tiny_wheel(tmp_path / "w", "3.1.4")
    out = tmp_path / "b.pbxupd"
    assert build_main(["bundle", "--key", str(keys / "fleet-update.pem"), "--version", "3.1.4",
                       "--package", "tinybox", "--out", str(out), str(wheel)]) == 0
    assert open_bundle(out, (keys / "fleet-update.pub.pem").read_bytes()).version == "3.1.4"
    assert build_main(["bundle", "--key", str(keys / "fleet-update.pem"), "--version", "3.1.4rc1",
                       "--out", str(out), str(wheel)]) == 1
    # A bundle whose main wheel reports another version would fail every box's health gate.
    assert build_main(["bundle", "--key", str(keys / "fleet-update.pem"), "--version", "3.1.5",
                       "--package", "tinybox", "--out", str(out), str(wheel)]) == 1
    assert "the tinybox wheel is version 3.1.4, the bundle says 3.1.5" in capsys.readouterr().err
    assert "PRIVATE" not in capsys.readouterr().out


class FlakyServer(ThreadingHTTPServer):
    """Serves one blob with Range support; the first `drops` responses stop half-way."""

    def __init__(self, blob: bytes, drops: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.blob, self.drops = blob, drops
        self.ranges: list[str | None] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        blob = self.server.blob
        rng = self.headers.get("Range")
        with self.server.lock:
            self.server.ranges.append(rng)
            drop = self.server.drops > 0
            self.server.drops -= 1
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
        body = blob[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if drop else body)
        self.wfile.flush()
        if drop:
            self.close_connection = True


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[FlakyServer] = []

    def start(blob: bytes, drops: int) -> FlakyServer:
        srv = FlakyServer(blob, drops)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_a_dropped_download_resumes_with_a_range_request(fleet: Fleet, tmp_path: Path,
                                                        serve: object) -> None:
    blob = fleet.bundle("1.2.0").read_bytes()
    srv = serve(blob, drops=2)  # type: ignore[operator]
    url = f"http://127.0.0.1:{srv.server_address[1]}/latest.pbxupd"
    got = fetch(url, tmp_path / "dl", attempts=4, sleep=lambda s: None)
    assert got.read_bytes() == blob
    first_half = len(blob) // 2
    second = first_half + (len(blob) - first_half) // 2
    assert srv.ranges == [None, f"bytes={first_half}-", f"bytes={second}-"]
    assert open_bundle(got, fleet.public_pem).version == "1.2.0"


def test_a_download_that_keeps_failing_gives_up_and_keeps_its_part(tmp_path: Path,
                                                                  serve: object) -> None:
    srv = serve(b"x" * 100_000, drops=10)  # type: ignore[operator]
    url = f"http://127.0.0.1:{srv.server_address[1]}/b"
    with pytest.raises(UpdateError, match="after 3 attempts"):
        fetch(url, tmp_path / "dl", attempts=3, sleep=lambda s: None)
    assert len(srv.ranges) == 3
    assert part_path(url, tmp_path / "dl").stat().st_size == 50_000 + 25_000 + 12_500
