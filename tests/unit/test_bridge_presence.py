"""Who drains a dead bridge's session: the presence table, driven by an injected clock."""

from __future__ import annotations

import socket

from cloud.bridge.presence import (
    CLEARED,
    OFFLINE,
    ONLINE,
    Peers,
    drain_topic,
    peer_of,
    presence_filter,
    presence_topic,
)
from cloud.bridge.run import default_client_id

S = 1_000_000_000
GRACE, RETRY = 2 * S, 10 * S


def group_of(*ids: str) -> dict[str, Peers]:
    """One table per instance, each having seen every other one online."""
    tables = {me: Peers(me, grace_ns=GRACE, retry_ns=RETRY) for me in ids}
    for t in tables.values():
        for other in ids:
            t.seen(other, ONLINE, 0)
    return tables


def test_exactly_one_survivor_drains_each_dead_peer() -> None:
    tables = group_of("a", "b", "c", "d")
    for t in tables.values():
        t.seen("a", OFFLINE, 1 * S)
        t.seen("b", OFFLINE, 1 * S)
    for dead in ("a", "b"):
        takers = [me for me, t in tables.items() if me not in ("a", "b")
                  and dead in t.due(10 * S)]
        assert len(takers) == 1, (dead, takers)


def test_a_peer_is_taken_over_only_after_the_grace_and_not_if_it_came_back() -> None:
    [t] = [group_of("x", "y")["x"]]
    t.seen("y", OFFLINE, 5 * S)
    assert t.due(5 * S + GRACE - 1) == []
    assert t.due(5 * S + GRACE) == ["y"]
    t.seen("y", ONLINE, 8 * S)  # restarted under its id: it resumes its own session
    assert t.due(60 * S) == []


def test_a_failed_takeover_is_retried_later_and_a_drained_peer_is_forgotten() -> None:
    t = group_of("x", "y")["x"]
    t.seen("y", OFFLINE, 0)
    assert t.due(GRACE) == ["y"]
    t.failed("y", GRACE)
    assert t.due(GRACE + RETRY - 1) == []
    assert t.due(GRACE + RETRY) == ["y"]
    t.drained("y")
    assert t.offline() == [] and t.online() == ["x"]


def test_a_cleared_presence_forgets_and_our_own_old_will_is_ignored() -> None:
    t = Peers("me", grace_ns=GRACE, retry_ns=RETRY)
    t.seen("me", OFFLINE, 0)  # a previous run under the same id: we are that session
    t.seen("old", OFFLINE, 0)  # a previous run under another id: drain it
    assert t.due(GRACE) == ["old"]
    t.seen("old", CLEARED, GRACE)
    assert t.due(GRACE) == [] and t.online() == ["me"]


def test_presence_topics_stay_outside_the_device_prefix_and_apart_from_markers() -> None:
    assert presence_topic("g", "g-host-1") == "pitbox/bridges/g/g-host-1"
    assert presence_filter("g") == "pitbox/bridges/g/+"
    assert peer_of("g", presence_topic("g", "b1")) == "b1"
    assert peer_of("g", drain_topic("g", "b1")) is None  # two levels: the filter misses it
    assert peer_of("other", presence_topic("g", "b1")) is None
    assert peer_of("g", "/devices/box-1/state") is None


def test_default_client_ids_are_unique_per_instance_on_one_host() -> None:
    ids = {default_client_id("pitbox-bridge") for _ in range(50)}
    assert len(ids) == 50  # a random suffix: two instances never share one MQTT session
    assert {i.rsplit("-", 1)[0] for i in ids} == {
        f"pitbox-bridge-{socket.gethostname()[:40]}"}  # the group and the host stay readable
