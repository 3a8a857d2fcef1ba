"""Clock skew at the broker: a device clock up to 10 min ahead is tolerated, more is not;
an expired token is refused however recent; revocation applies at the next connect only."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from tests.integration.broker_fixtures import BrokerHandle, register_device_key
from tests.integration.test_broker_auth import Session, accepted, try_connect


def token_at(broker: BrokerHandle, key: bytes, iat_offset_s: int, lifetime_s: int = 1200) -> str:
    iat = int(time.time()) + iat_offset_s
    return jwt.encode({"iat": iat, "exp": iat + lifetime_s, "aud": broker.audience}, key,
                      algorithm="RS256")


@pytest.mark.parametrize(("iat_offset_s", "ok"), [
    (0, True), (9 * 60, True), (-23 * 3600, True), (11 * 60, False)])
def test_iat_may_lead_the_broker_by_at_most_ten_minutes(broker: BrokerHandle, iat_offset_s: int,
                                                        ok: bool) -> None:
    device_id = f"skew-{uuid.uuid4().hex[:8]}"
    key = register_device_key(broker.keys_dir, device_id)
    lifetime = 24 * 3600 if iat_offset_s < 0 else 1200
    assert accepted(try_connect(broker, device_id, token_at(broker, key, iat_offset_s, lifetime))) is ok


def test_a_token_expired_a_few_seconds_ago_is_refused(broker: BrokerHandle) -> None:
    device_id = f"skew-{uuid.uuid4().hex[:8]}"
    key = register_device_key(broker.keys_dir, device_id)
    assert not accepted(try_connect(broker, device_id, token_at(broker, key, -1205, 1200)))


def test_revocation_takes_effect_at_the_next_connect_not_mid_session(broker: BrokerHandle) -> None:
    device_id = f"rev-{uuid.uuid4().hex[:8]}"
    key = register_device_key(broker.keys_dir, device_id)
    live = Session(broker, device_id, token_at(broker, key, 0))
    try:
        (broker.keys_dir / f"{device_id}.pem").unlink()
        live.publish(f"{broker.prefix}/{device_id}/events/lap", b"still connected")
        assert live.disconnects == 0
        assert not accepted(try_connect(broker, f"{device_id}", token_at(broker, key, 0)))
    finally:
        live.close()
