"""Three LEDs a person reads at a glance: data (green), uplink (blue), alarm (red).

| what the box is doing        | data LED          | uplink LED                         | alarm LED        |
|------------------------------|-------------------|------------------------------------|------------------|
| booting                      | all three blink together, 4 per second                               |||
| waiting for game data        | short blip / 2 s  |                                    |                  |
| capturing                    | on                |                                    |                  |
| uplink online                |                   | on                                 |                  |
| offline, buffering           |                   | blinks / 2 s; longer glow = fuller | on when full     |
| offline, buffer full         |                   | fast blink                         | on               |
| clock not synced             |                   |                                    | slow blink (1 s) |
| error (outbox cannot commit) |                   |                                    | on               |

`look(health)` is pure: which pattern each LED shows. `lit(pattern, t_ms)` is pure too. The
shell, `LedPanel`, owns the pins (gpiozero, `pin_factory` injected) and sets each pin's level
from an injected monotonic clock when the service calls `refresh()` — a few pin writes on the
asyncio loop, no threads, nothing that waits, so the data path never blocks on the LEDs and a
test sees an exact, repeatable pin history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import PitboxError
from gateway.status.health import BOOTING, Health, State

Pattern = tuple[int, int]  # (on ms, off ms) of one period; (1, 0) is steady on, (0, 1) off
ON: Pattern = (1, 0)
OFF: Pattern = (0, 1)
BOOT_BLINK: Pattern = (125, 125)
WAITING_BLIP: Pattern = (100, 1900)
CLOCK_BLINK: Pattern = (1000, 1000)
BUFFER_PERIOD_MS = 2000
MIN_GAP_MS = 250


class UnknownPinFactoryError(PitboxError, LookupError):
    """`leds.factory` names no gpiozero pin factory."""


@dataclass(frozen=True, slots=True)
class Look:
    """One pattern per LED."""

    data: Pattern
    uplink: Pattern
    alarm: Pattern


def buffering_pattern(fill: float) -> Pattern:
    """On for 1/4, 2/4, 3/4 of the 2 s period by how full the outbox is (quarters: easy to
    tell apart), and for all but a 250 ms gap in the last quarter: never steady, which is
    "online"."""
    quarters = max(1, min(4, math.ceil(fill * 4)))
    on_ms = min(quarters * BUFFER_PERIOD_MS // 4, BUFFER_PERIOD_MS - MIN_GAP_MS)
    return (on_ms, BUFFER_PERIOD_MS - on_ms)


def look(h: Health) -> Look:
    if h.state is State.BOOTING:
        return Look(BOOT_BLINK, BOOT_BLINK, BOOT_BLINK)
    data = ON if h.capturing else WAITING_BLIP
    if h.uplink_connected:
        uplink = ON
    elif h.buffering:
        uplink = buffering_pattern(h.fill)
        if h.fill >= 1.0:  # a full buffer evicts: solid blue is not enough, raise the alarm
            uplink = BOOT_BLINK
    else:
        uplink = OFF
    if h.state is State.ERROR or (h.buffering and h.fill >= 1.0):
        alarm = ON
    elif h.state is State.CLOCK_UNSYNCED:
        alarm = CLOCK_BLINK
    else:
        alarm = OFF
    return Look(data, uplink, alarm)


def lit(p: Pattern, t_ms: int) -> bool:
    """Is an LED showing `p` on at `t_ms` after the panel started?"""
    on_ms, off_ms = p
    if off_ms == 0:
        return True
    return on_ms > 0 and t_ms % (on_ms + off_ms) < on_ms


def scene(state: State, *, capturing: bool = False, connected: bool = False,
          buffered: int = 0, budget: int = 100) -> Health:
    """A hand-made health, for `pitbox leds test` and the tests."""
    return Health(state=state, capturing=capturing, session_live=capturing,
                  uplink_connected=connected, buffering=buffered > 0 and not connected,
                  fill=min(1.0, buffered / budget), datagrams=0, outbox_pending=buffered)


SCENES: list[tuple[str, Health]] = [
    ("booting", BOOTING),
    ("waiting for game data, uplink online", scene(State.ONLINE, connected=True)),
    ("capturing, uplink online", scene(State.ONLINE, capturing=True, connected=True)),
    ("capturing, offline, buffer 1/4", scene(State.OFFLINE, capturing=True, buffered=20)),
    ("capturing, offline, buffer 3/4", scene(State.OFFLINE, capturing=True, buffered=70)),
    ("capturing, offline, buffer full", scene(State.OFFLINE, capturing=True, buffered=100)),
    ("capturing, clock not synced", scene(State.CLOCK_UNSYNCED, capturing=True, buffered=5)),
    ("error: outbox cannot commit", scene(State.ERROR, capturing=True)),
]


class Panel(Protocol):
    """Where health is shown. `refresh` is called often (blinking), `show` on every sample."""

    def show(self, health: Health) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


class NullPanel:
    """No LEDs (config `leds.factory = "off"`)."""

    def show(self, health: Health) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


class LedPanel:
    """The three LEDs on `pins` (BCM numbers: data, uplink, alarm)."""

    def __init__(self, pins: tuple[int, int, int], *, pin_factory: Any,
                 clock: Callable[[], float], active_high: bool = True) -> None:
        from gpiozero import LED  # imported here: a box with factory="off" never loads gpiozero

        self._clock = clock
        self._t0 = clock()
        self.leds = [LED(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
                     for pin in pins]
        self._levels = [False] * len(self.leds)  # what we last wrote: no pin reads needed
        self.look = look(BOOTING)
        self.refresh()

    def show(self, health: Health) -> None:
        self.look = look(health)
        self.refresh()

    def refresh(self) -> None:
        t_ms = round((self._clock() - self._t0) * 1000)
        patterns = (self.look.data, self.look.uplink, self.look.alarm)
        for i, (led, pattern) in enumerate(zip(self.leds, patterns, strict=True)):
            on = lit(pattern, t_ms)
            if self._levels[i] != on:  # write only on change: a pin write costs a syscall
                led.value = on
                self._levels[i] = on

    def close(self) -> None:
        for led in self.leds:
            led.off()
            led.close()


def make_panel(factory: str, pins: tuple[int, int, int], clock: Callable[[], float],
               *, active_high: bool = True) -> Panel:
    """`factory`: "off" (no LEDs), "mock" (gpiozero MockFactory), "auto" (gpiozero's choice
    on a Pi: lgpio, RPi.GPIO, …), or a gpiozero factory name ("lgpio", "native", …)."""
    if factory == "off":
        return NullPanel()
    if factory == "mock":
        from gpiozero.pins.mock import MockFactory

        return LedPanel(pins, pin_factory=MockFactory(), clock=clock, active_high=active_high)
    if factory == "auto":
        return LedPanel(pins, pin_factory=None, clock=clock, active_high=active_high)
    from importlib.metadata import entry_points

    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name == factory:
            return LedPanel(pins, pin_factory=ep.load()(), clock=clock, active_high=active_high)
    raise UnknownPinFactoryError(f"unknown pin factory {factory!r} (off, mock, auto, lgpio, "
                                 "rpigpio, pigpio, native)")
