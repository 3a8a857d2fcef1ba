"""LED patterns on gpiozero's MockFactory, driven by an injected clock.

Every test compares each pin's whole state history: MockPin.assert_states() zips, so a
shorter history would pass it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.status.health import BOOTING, HealthModel, Sample, State
from gateway.status.leds import (
    BOOT_BLINK,
    CLOCK_BLINK,
    OFF,
    ON,
    SCENES,
    WAITING_BLIP,
    LedPanel,
    UnknownPinFactoryError,
    buffering_pattern,
    lit,
    look,
    make_panel,
    scene,
)

PINS = (17, 27, 22)  # data, uplink, alarm


class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    try:
        yield f
    finally:
        f.reset()


def history(factory: MockFactory) -> dict[str, list[bool]]:
    return {name: [s.state for s in factory.pin(pin).states]
            for name, pin in zip(("data", "uplink", "alarm"), PINS, strict=True)}


def run(panel: LedPanel, clock: Clock, until_ms: int, step_ms: int = 50) -> None:
    for _ in range(10_000):  # bounded
        if clock.ms + step_ms > until_ms:
            return
        clock.ms += step_ms
        panel.refresh()


def test_booting_blinks_all_three_together_four_times_a_second(factory: MockFactory) -> None:
    clock = Clock()
    panel = LedPanel(PINS, pin_factory=factory, clock=clock)
    run(panel, clock, 500)  # on 0-100, off 150-200, on 250-350, off 400-450, on 500
    blink = [False, True, False, True, False, True]
    assert history(factory) == {"data": blink, "uplink": blink, "alarm": blink}


def test_capturing_and_online_is_two_steady_lights(factory: MockFactory) -> None:
    clock = Clock()
    panel = LedPanel(PINS, pin_factory=factory, clock=clock)
    panel.show(scene(State.ONLINE, capturing=True, connected=True))
    run(panel, clock, 3000, step_ms=100)
    assert history(factory) == {"data": [False, True], "uplink": [False, True],
                                "alarm": [False, True, False]}


def test_offline_with_a_quarter_full_buffer_glows_half_a_second_every_two(
        factory: MockFactory) -> None:
    clock = Clock()
    panel = LedPanel(PINS, pin_factory=factory, clock=clock)
    panel.show(scene(State.OFFLINE, capturing=False, buffered=20))
    run(panel, clock, 4500, step_ms=100)
    h = history(factory)
    # data: the waiting blip (on 0-99 ms of every 2 s): on at 0, off at 100, on at 2000, 4000
    assert h["data"] == [False, True, False, True, False, True, False]
    # uplink: on 0-400, off 500-1900, on 2000-2400, off 2500-3900, on 4000-4400, off at 4500
    assert h["uplink"] == [False, True, False, True, False, True, False]
    assert h["alarm"] == [False, True, False]
    clock.ms = 4100  # 4100 % 2000 = 100: inside the 500 ms glow
    panel.refresh()
    assert factory.pin(27).state is True


def test_clock_not_synced_blinks_the_alarm_once_a_second(factory: MockFactory) -> None:
    clock = Clock()
    panel = LedPanel(PINS, pin_factory=factory, clock=clock)
    panel.show(scene(State.CLOCK_UNSYNCED, capturing=True, buffered=5))
    run(panel, clock, 3000, step_ms=250)
    h = history(factory)
    assert h["alarm"] == [False, True, False, True, False]  # on at 0, 2000; off 1000, 3000
    assert factory.pin(22).state is False
    assert h["data"] == [False, True]


def test_an_error_lights_the_alarm_steadily(factory: MockFactory) -> None:
    clock = Clock()
    panel = LedPanel(PINS, pin_factory=factory, clock=clock)
    clock.ms = 130  # booting shows "off" at 130 ms: the error turns the alarm back on
    panel.refresh()
    panel.show(scene(State.ERROR, capturing=True, connected=True))
    run(panel, clock, 2000)
    assert history(factory) == {"data": [False, True, False, True], "uplink": [False, True, False, True],
                                "alarm": [False, True, False, True]}


def test_an_evening_at_the_venue_through_the_health_model(factory: MockFactory) -> None:
    """boot → waiting → capturing online → broker lost, buffering → reconnect, drained."""
    clock = Clock()
    panel = LedPanel(PINS, pin_factory=factory, clock=clock)
    model = HealthModel(outbox_budget_rows=1000)
    timeline = [  # (ms, ready, datagrams, connected, pending)
        (1000, True, 0, True, 0),        # up, no rig sending yet: data blips
        (3000, True, 500, True, 0),      # rigs send: data steady
        (5000, True, 1000, False, 900),  # broker gone, 90 % full: a short gap every 2 s
        (9000, True, 1500, True, 0),     # back and drained
    ]
    for ms, ready, datagrams, connected, pending in timeline:
        clock.ms = ms
        panel.show(model.update(Sample(mono_s=ms / 1000, ready=ready, datagrams=datagrams,
                                       uplink_connected=connected, outbox_pending=pending,
                                       clock_sane=True)))
        run(panel, clock, ms + 1900, step_ms=100)
    h = history(factory)
    # booting on at 0; waiting blip at 1000 (2000 % 2000 = 0 → on at 2000 too); steady from 3000
    assert h["data"] == [False, True, False, True, False, True]
    # on at boot, steady while online; offline 90 % full: on 1.75 s of every 2 s, so the one
    # 250 ms gap (at 5800 ms) tells it from "online"
    assert h["uplink"] == [False, True, False, True]
    assert h["alarm"] == [False, True, False]


@pytest.mark.parametrize(("fill", "pattern"), [
    (0.01, (500, 1500)), (0.25, (500, 1500)), (0.26, (1000, 1000)), (0.5, (1000, 1000)),
    (0.75, (1500, 500)), (0.76, (1750, 250)), (1.0, (1750, 250)),
])
def test_the_buffer_glow_grows_in_quarters(fill: float, pattern: tuple[int, int]) -> None:
    assert buffering_pattern(fill) == pattern


def test_a_full_buffer_raises_the_alarm_and_flashes_the_uplink() -> None:
    full = look(scene(State.OFFLINE, capturing=True, buffered=100))
    assert (full.uplink, full.alarm) == (BOOT_BLINK, ON)
    assert look(scene(State.OFFLINE, capturing=True)).uplink == OFF  # offline, nothing waiting


def test_every_scene_looks_different() -> None:
    looks = [look(h) for _, h in SCENES]
    assert len(set(looks)) == len(looks)
    assert look(BOOTING).data == BOOT_BLINK
    assert look(scene(State.ONLINE, connected=True)).data == WAITING_BLIP
    assert look(scene(State.CLOCK_UNSYNCED)).alarm == CLOCK_BLINK


@pytest.mark.parametrize(("pattern", "t_ms", "on"), [
    (ON, 0, True), (ON, 123_456, True), (OFF, 0, False), (OFF, 999, False),
    ((100, 900), 99, True), ((100, 900), 100, False), ((100, 900), 1000, True),
])
def test_lit(pattern: tuple[int, int], t_ms: int, on: bool) -> None:
    assert lit(pattern, t_ms) is on


def test_an_unknown_pin_factory_is_named() -> None:
    with pytest.raises(UnknownPinFactoryError, match="'gpio-magic'"):
        make_panel("gpio-magic", PINS, clock=Clock())
    off = make_panel("off", PINS, clock=Clock())
    off.show(BOOTING)
    off.refresh()
    assert type(off).__name__ == "NullPanel"


def test_pitbox_leds_test_shows_every_pattern_in_turn(capsys: pytest.CaptureFixture[str]) -> None:
    from pitbox.cli import main

    assert main(["leds", "test", "--factory", "mock", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    shown = [line.strip() for line in out.splitlines() if line.startswith("    ") or
             (line.startswith("  ") and "pin history" not in line)]
    assert shown == [name for name, _ in SCENES]
    history_lines = {line.split()[0]: line.split()[-1] for line in out.splitlines()
                     if "pin history" in line}
    assert set(history_lines) == {"data", "uplink", "alarm"}
    # the alarm is dark in the three calm scenes and lit in the last: it changed several times
    assert history_lines["alarm"].count("#") >= 3
