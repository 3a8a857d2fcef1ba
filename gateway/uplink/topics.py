"""Topics of the Cloud IoT Core convention, under a configurable prefix (default `/devices`)."""


def events(prefix: str, device: str, kind: str) -> str:
    return f"{prefix}/{device}/events/{kind}"


def state(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/state"


def config(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/config"


def commands(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/commands/#"
