"""Errors of the document stores. Leaves also inherit the matching builtin (house style)."""

from __future__ import annotations

from gateway.errors import PitboxError


class StoreError(PitboxError, OSError):
    """The store could not be read or written (disk, lock, connection). Worth retrying."""


class DocumentError(PitboxError, ValueError):
    """A document the store cannot hold (not JSON-serialisable, bad id). Retrying won't help."""
