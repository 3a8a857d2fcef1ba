"""Fuzz the plugin's token parser through real CONNECTs: random and mutated tokens.

Bounded (a fixed count per kind, seeded), and every case must be refused; afterwards the
broker process is still alive, a live device session was not disturbed, and a good token is
still accepted. The seed is printed on failure so a case can be replayed.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid

import jwt
import pytest

from tests.integration.broker_fixtures import BrokerHandle, register_device_key
from tests.integration.test_broker_auth import Session, accepted, try_connect

SEED = 20261123
RANDOM_CASES = 300
MUTATED_CASES = 500


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[bytes, ...] | None:
    """The decoded segments, or None if any is not base64url (lenient on padding)."""
    try:
        return tuple(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split("."))
    except (binascii.Error, ValueError):
        return None


def random_token(rng: random.Random) -> str:
    shape = rng.randrange(6)
    if shape == 0:  # printable noise with dots
        return "".join(rng.choice("ab.-_=+/0Z{}\"") for _ in range(rng.randrange(0, 600)))
    if shape == 1:  # three segments of random bytes
        return ".".join(b64(rng.randbytes(rng.randrange(0, 300))) for _ in range(3))
    if shape == 2:  # JSON-shaped header and claims with hostile values
        header = rng.choice([{"alg": "RS256"}, {"alg": "none"}, {"alg": "HS256"}, {"alg": None},
                             {"alg": ["RS256"]}, {"alg": "RS256" * 50}, {}, [], "RS256"])
        claims = rng.choice([{"iat": 1e308, "exp": -1e308, "aud": "pitbox-test"},
                             {"iat": "now", "exp": {}, "aud": None},
                             {"aud": "x" * 2000}, {"a": [[[[[[[[[]]]]]]]]]}, [1, 2], 7, None])
        return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                         b64(rng.randbytes(256))])
    if shape == 3:  # broken JSON and non-UTF-8 inside valid base64
        return ".".join(b64(x) for x in (b'{"alg":"RS256"', b"\xff\xfe\x00{", rng.randbytes(256)))
    if shape == 4:  # wrong number of segments
        return ".".join(b64(rng.randbytes(20)) for _ in range(rng.choice([1, 2, 4, 5, 40])))
    return "." * rng.randrange(1, 10)


def mutate(token: str, rng: random.Random) -> str:
    raw = bytearray(token.encode())
    how = rng.randrange(6)
    if how == 0:  # flip bits
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(raw))
            raw[i] ^= 1 << rng.randrange(8)
    elif how == 1:  # truncate
        raw = raw[:rng.randrange(len(raw))]
    elif how == 2:  # splice random bytes in
        i = rng.randrange(len(raw))
        raw[i:i] = rng.randbytes(rng.randrange(1, 40))
    elif how == 3:  # swap two segments
        segs = token.split(".")
        i, j = rng.sample(range(3), 2)
        segs[i], segs[j] = segs[j], segs[i]
        return ".".join(segs)
    elif how == 4:  # re-encode the claims with one changed, keep the signature
        head, body, sig = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        key = rng.choice(["iat", "exp", "aud"])
        claims[key] = rng.choice([0, -1, 2**63, "pitbox-test ", None, claims[key] + 1
                                  if isinstance(claims[key], int) else "x"])
        return ".".join([head, b64(json.dumps(claims).encode()), sig])
    else:  # duplicate a segment's content
        head, body, sig = token.split(".")
        return ".".join([head, body + body, sig])
    return raw.decode("utf-8", errors="replace")


@pytest.mark.parametrize("kind", ["random", "mutated"])
def test_fuzzed_tokens_are_all_refused_and_the_broker_stays_up(broker: BrokerHandle,
                                                              kind: str) -> None:
    rng = random.Random(f"{SEED}-{kind}")
    device_id = f"fuzz-{uuid.uuid4().hex[:8]}"
    key = register_device_key(broker.keys_dir, device_id)
    now = int(time.time())
    good = jwt.encode({"iat": now, "exp": now + 1200, "aud": broker.audience}, key,
                      algorithm="RS256")
    bystander_id = f"fuzz-{uuid.uuid4().hex[:8]}"
    bystander_key = register_device_key(broker.keys_dir, bystander_id)
    bystander = Session(broker, bystander_id, jwt.encode(
        {"iat": now, "exp": now + 1200, "aud": broker.audience}, bystander_key, algorithm="RS256"))
    tried = 0
    try:
        cases = RANDOM_CASES if kind == "random" else MUTATED_CASES
        for i in range(cases):
            token = random_token(rng) if kind == "random" else mutate(good, rng)
            if parts(token) == parts(good):
                continue  # same bytes once decoded (e.g. only base64 padding bits changed)
            # Half of the cases also borrow the live bystander's client id: no disturbance.
            client_id = bystander_id if i % 2 else device_id
            rc = try_connect(broker, client_id, token)
            assert not accepted(rc), f"seed {SEED}-{kind} case {i} accepted: {token[:200]!r}"
            tried += 1
        assert broker.broker.pid is not None and broker.broker._proc is not None
        assert broker.broker._proc.poll() is None, "mosquitto died"
        assert accepted(try_connect(broker, device_id, good))
        assert bystander.disconnects == 0, "a refused CONNECT disturbed the live session"
        topic = f"{broker.prefix}/{bystander_id}/events/lap"
        assert bystander.subscribe(f"{broker.prefix}/{bystander_id}/config") == 1
        bystander.publish(topic, b"still here")
    finally:
        bystander.close()
    assert tried >= cases * 0.9
