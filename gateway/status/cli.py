"""`pitbox leds test`: show every LED pattern in turn, so a person can check the wiring."""

from __future__ import annotations

import argparse
import time

from gateway import config
from gateway.status.leds import SCENES, LedPanel, NullPanel, make_panel


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    leds = sub.add_parser("leds", help="the status LEDs", description="The status LEDs.")
    lsub = leds.add_subparsers(dest="leds_command", metavar="COMMAND", required=True)
    t = lsub.add_parser("test", help="cycle through every LED pattern on the configured pins",
                        description="Show each status pattern (booting, waiting for game data, "
                        "capturing, online, offline and buffering at several fill levels, clock "
                        "not synced, error) for a few seconds on the pins from [leds] in the "
                        "config, naming each as it goes. Stop the gateway first: it owns the pins.")
    t.add_argument("--config", help="TOML config file (default: built-in defaults)")
    t.add_argument("--factory", help="override leds.factory (default without --config: auto, "
                   "the Pi's pins; mock prints each pin's history instead)")
    t.add_argument("--seconds", type=float, default=4.0, help="how long each pattern shows")
    t.set_defaults(func=cmd_leds_test)


def cmd_leds_test(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    leds = cfg.leds
    # Without a config file the built-in default ("mock", for the demo) would light nothing.
    factory = args.factory or ("auto" if args.config is None else leds.factory)
    pins = (leds.data_pin, leds.uplink_pin, leds.alarm_pin)
    panel = make_panel(factory, pins, clock=time.monotonic, active_high=leds.active_high)
    if isinstance(panel, NullPanel):
        print("leds: factory is 'off', nothing to show")
        return 0
    assert isinstance(panel, LedPanel)
    print(f"leds: data GPIO{pins[0]}, uplink GPIO{pins[1]}, alarm GPIO{pins[2]} ({factory})")
    try:
        for name, health in SCENES:
            print(f"  {name}", flush=True)
            panel.show(health)
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:  # bounded by --seconds
                panel.refresh()
                time.sleep(0.02)
        if factory == "mock":
            for led, role in zip(panel.leds, ("data", "uplink", "alarm"), strict=True):
                states = "".join("#" if s.state else "." for s in led.pin.states)
                print(f"  {role:6} pin history: {states}")
    finally:
        panel.close()
    return 0
