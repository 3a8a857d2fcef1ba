"""The service-account file format the broker plugin reads (``cloud.broker.accounts``)."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest

from cloud.broker.accounts import account_line, hash_password, write_accounts


def test_hash_round_trips_through_hashlib() -> None:
    salt = bytes(range(16))
    line = hash_password("s3cret", iterations=1000, salt=salt)
    scheme, iterations, salt_b64, hash_b64 = line.split(":")
    assert scheme == "pbkdf2_sha256" and iterations == "1000"
    assert base64.b64decode(salt_b64, validate=True) == salt
    digest = base64.b64decode(hash_b64, validate=True)
    assert len(digest) == 32
    assert digest == hashlib.pbkdf2_hmac("sha256", b"s3cret", salt, 1000)


def test_default_salt_is_random_and_iterations_default_to_100k() -> None:
    a, b = hash_password("pw"), hash_password("pw")
    assert a != b
    assert a.split(":")[1] == "100000"


@pytest.mark.parametrize("kwargs", [{"iterations": 0}, {"salt": b""}, {"salt": b"x" * 65}])
def test_out_of_range_parameters_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        hash_password("pw", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a:b", "has space", "x" * 65, "#comment"])
def test_account_names_that_would_break_the_file_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        account_line(name, "pw")


def test_write_accounts_is_private_and_parseable(tmp_path: Path) -> None:
    path = tmp_path / "accounts"
    write_accounts(path, {"bridge": "pw-1", "ops": "pw-2"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    entries = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert [e.split(":")[0] for e in entries] == ["bridge", "ops"]
    _, _, iterations, salt_b64, hash_b64 = entries[0].split(":")
    expected = hashlib.pbkdf2_hmac("sha256", b"pw-1", base64.b64decode(salt_b64), int(iterations))
    assert base64.b64decode(hash_b64) == expected
