"""Which rig sent a datagram, and which rigs have gone quiet. Pure: times come in as arguments.

A source is (ip, source port, listening port). Names, first match wins:
- config `capture.rig_names` by "ip:port", then by ":listen_port" (a port per rig), then by "ip";
- otherwise the ip, unless another source of that ip holds the name and is still active, in
  which case "ip:port" (two games on one PC). A game restarted on the same PC comes back from a
  new source port: its old source is idle by then, so it gets the ip — and its records the same
  rig — again.

A rig that sends nothing for `idle_after_s` is idle: reported once by `sweep`, and active again
at its next datagram. Idle is a state, not an error: drivers stop between sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Rig:
    name: str
    sources: set[str] = field(default_factory=set)  # "ip:port" it has sent from
    last_mono_ns: int = 0
    idle: bool = False
    datagrams: int = 0


class RigDirectory:
    def __init__(self, names: dict[str, str] | None = None, *, idle_after_s: float = 10.0) -> None:
        self.names = names or {}
        self.idle_after_ns = int(idle_after_s * 1e9)
        self.rigs: dict[str, Rig] = {}
        self._by_source: dict[tuple[str, int], Rig] = {}

    def rig_for(self, src: str, mono_ns: int, listen_port: int = 0) -> tuple[Rig, bool]:
        """The rig of a datagram from `src` ("ip:port"), and whether it is new or back from idle."""
        rig = self._by_source.get((src, listen_port))
        if rig is None:  # once named, a source keeps its rig: a session never changes name
            rig = self._assign(src, listen_port)
        woke = rig.idle or rig.datagrams == 0
        rig.idle = False
        rig.last_mono_ns = mono_ns
        rig.datagrams += 1
        return rig, woke

    def _name(self, src: str, listen_port: int) -> str:
        ip = src.rsplit(":", 1)[0]
        for key in (src, f":{listen_port}" if listen_port else None, ip):
            if key and key in self.names:
                return self.names[key]
        holder = self.rigs.get(ip)
        if holder is None or holder.idle or src in holder.sources:
            return ip
        return src

    def _assign(self, src: str, listen_port: int) -> Rig:
        name = self._name(src, listen_port)
        rig = self.rigs.get(name)
        if rig is None:
            rig = self.rigs[name] = Rig(name)
        rig.sources.add(src)
        self._by_source[(src, listen_port)] = rig
        return rig

    def sweep(self, mono_ns: int) -> list[Rig]:
        """Mark rigs silent for `idle_after_s` idle; returns those that just became idle."""
        went_idle = []
        for rig in self.rigs.values():
            if not rig.idle and rig.datagrams and mono_ns - rig.last_mono_ns >= self.idle_after_ns:
                rig.idle = True
                went_idle.append(rig)
        return went_idle

    def active(self) -> list[str]:
        return sorted(r.name for r in self.rigs.values() if not r.idle and r.datagrams)
