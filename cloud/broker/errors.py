"""Errors raised by the broker shell (building the plugin, running Mosquitto)."""

from gateway.errors import PitboxError


class BrokerError(PitboxError, RuntimeError):
    """The auth plugin did not build, or Mosquitto did not start or stop cleanly."""
