"""Cloud IoT Core style identity: the MQTT client id and the RS256 JWT claims (pure).

The box has no real-time clock: before NTP it may believe it is 1970, and a token minted then
is refused by the broker. So no token is minted while the clock is not sane; capture goes on
and the outbox fills meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jwt

from gateway.errors import ClockNotSynced

# No real clock reads earlier than this build; 2026-01-01T00:00:00Z.
BUILD_EPOCH_S = 1_767_225_600
MAX_LIFETIME_S = 24 * 3600
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


def client_id(project: str, region: str, registry: str, device: str) -> str:
    return f"projects/{project}/locations/{region}/registries/{registry}/devices/{device}"


def clock_is_sane(now_s: float, *, synced_flag: bool = False) -> bool:
    """True once systemd-timesyncd says so, or the clock is at least past the build date."""
    return synced_flag or now_s >= BUILD_EPOCH_S


def claims(now_s: float, audience: str, lifetime_s: int) -> dict[str, int | str]:
    if not 0 < lifetime_s <= MAX_LIFETIME_S:
        raise ValueError(f"JWT lifetime must be 1..{MAX_LIFETIME_S} s, got {lifetime_s}")
    iat = int(now_s)
    return {"iat": iat, "exp": iat + lifetime_s, "aud": audience}


def timesync_synchronized() -> bool:
    """systemd-timesyncd's flag file: present once NTP has set the clock this boot."""
    return TIMESYNC_FLAG.exists()


def mint(private_key_pem: bytes, now_s: float, audience: str, lifetime_s: int,
         synced: Callable[[], bool] = timesync_synchronized) -> str:
    """An RS256 token for the MQTT password. Raises `ClockNotSynced` before the clock is sane."""
    if not clock_is_sane(now_s, synced_flag=synced()):
        raise ClockNotSynced(f"wall clock reads {now_s:.0f} s, before the build date: not minting a JWT")
    return jwt.encode(claims(now_s, audience, lifetime_s), private_key_pem, algorithm="RS256")
