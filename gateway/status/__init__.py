"""What the box tells the world about itself: `health` (pure verdict), `leds` (three LEDs via
gpiozero), `monitor` (the status task: LEDs + health file), `sdnotify` (systemd), `watchdog`
(pure: may the service send WATCHDOG=1, i.e. does the whole data path move?)."""
