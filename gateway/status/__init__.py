"""What the box tells the world about itself: `health` (pure verdict), `leds` (three LEDs via
gpiozero), `monitor` (the status task: LEDs + health file), `sdnotify` (systemd)."""
