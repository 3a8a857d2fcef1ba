"""Telling rigs apart and noticing when they go quiet: pure, times passed in."""

from gateway.rigs import RigDirectory

S = 10**9


def test_one_source_per_pc_is_named_by_its_ip():
    d = RigDirectory()
    a, new_a = d.rig_for("10.0.0.21:50001", 0)
    b, new_b = d.rig_for("10.0.0.22:50001", 0)
    again, new_again = d.rig_for("10.0.0.21:50001", 1)
    assert (a.name, b.name) == ("10.0.0.21", "10.0.0.22")
    assert new_a and new_b and not new_again and again is a


def test_two_games_on_one_pc_are_two_rigs():
    d = RigDirectory()
    first, _ = d.rig_for("10.0.0.21:50001", 0)
    second, _ = d.rig_for("10.0.0.21:50002", 0)
    assert first.name == "10.0.0.21" and second.name == "10.0.0.21:50002"
    assert d.active() == ["10.0.0.21", "10.0.0.21:50002"]


def test_a_restarted_game_on_a_new_source_port_is_the_same_rig_once_the_old_went_idle():
    d = RigDirectory(idle_after_s=10)
    old, _ = d.rig_for("10.0.0.21:50001", 0)
    assert d.sweep(5 * S) == []
    assert d.sweep(11 * S) == [old] and old.idle
    assert d.sweep(12 * S) == []  # reported once
    back, woke = d.rig_for("10.0.0.21:61234", 20 * S)
    assert back is old and woke and not back.idle
    assert back.sources == {"10.0.0.21:50001", "10.0.0.21:61234"}


def test_config_names_win_by_source_then_listening_port_then_ip():
    d = RigDirectory({"10.0.0.21:50001": "rig-a", ":20778": "rig-b", "10.0.0.23": "rig-c"})
    assert d.rig_for("10.0.0.21:50001", 0)[0].name == "rig-a"
    assert d.rig_for("10.0.0.22:50001", 0, listen_port=20778)[0].name == "rig-b"
    assert d.rig_for("10.0.0.23:50001", 0, listen_port=20777)[0].name == "rig-c"
    assert d.rig_for("10.0.0.24:50001", 0, listen_port=20777)[0].name == "10.0.0.24"


def test_a_named_source_keeps_its_rig_after_idle():
    d = RigDirectory(idle_after_s=1)
    first, _ = d.rig_for("10.0.0.21:50001", 0)
    second, _ = d.rig_for("10.0.0.21:50002", 0)
    d.sweep(2 * S)
    assert first.idle and second.idle
    again, woke = d.rig_for("10.0.0.21:50002", 3 * S)
    assert again is second and again.name == "10.0.0.21:50002" and woke
