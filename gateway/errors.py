"""One exception tree for pitbox. Leaves also inherit the matching builtin, so callers
that only know Python's exceptions still catch them (the gpiozero pattern)."""


class PitboxError(Exception):
    """Root of every error pitbox raises on purpose."""


class ConfigError(PitboxError, ValueError):
    """A config file or value is wrong; the message names the key and the file."""


class MalformedPacket(PitboxError, ValueError):
    """A datagram that cannot be decoded. `reason` is a short, countable label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class WireError(PitboxError, ValueError):
    """An uplink message that is not a valid envelope (unknown version, bad body)."""


class OutboxError(PitboxError, OSError):
    """The SQLite outbox could not be opened or written."""


class OutboxFullError(OutboxError):
    """A commit failed because the disk (or SQLite's page limit) is full: a state the box
    lives with (evict, alarm LED, keep capturing), unlike other write failures."""


class UplinkError(PitboxError, ConnectionError):
    """The MQTT uplink failed (refused, disconnected, timed out)."""


class ClockNotSynced(UplinkError):
    """No JWT is minted while the wall clock is not sane (the Pi has no RTC)."""
