from gateway.outbox.store import Outbox, Row

__all__ = ["Outbox", "Row"]
