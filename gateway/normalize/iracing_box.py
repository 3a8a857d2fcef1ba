"""The box's merge of every shim's view: one team car per session, one writer at a time. Pure.

Each team member's PC runs a shim; a venue has several teams. Frames arrive per shim id:
`info` (the trimmed session info) and `tel` (changed variables, or a full set). The box keeps
each shim's view, files it under its session key, and per session picks **one source**:

- the **in-car client** (`DriverUserID == Drivers[DriverCarIdx].UserID`) whenever one is
  connected: only it writes lap fuel and sees speed and the stall flag;
- otherwise the current source while it keeps sending, else whichever teammate sends now:
  its `CarIdx*` view keeps laps, lap times and pit events going (fuel unknown).

Every record of a team car carries one rig, `iracing-car{idx}` (the shim it came from is
the lap's `detail.source`), so the uplink keeps the car's records in order. Frames of the
other shims are counted (`shadowed`) and change nothing, so the team's several
views make one set of records. The stint state lives here, per session, not per shim: after
a driver swap the next driver's PC simply becomes the source and the stint carries on.
A new `SessionNum` or session id is a new key: a new normalizer, counters reset; laps of
the old one still waiting for their time are closed without it.

**Old frames never count twice.** A shim that reconnects first resends its last picture and
then what it buffered, all older than what a teammate's PC has since filled in. Per session,
an observation older (`SessionTime`) than the last one used is ignored (`behind`), and a PC
takes over as the source only once it has caught up (within `CATCH_UP_S`: two PCs' session
clocks need not agree to the tick). A shim's own frames never go back in time, even in a
replay, so a shim whose clock goes back is in a new sim session: the session's mark is dropped.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import MalformedPacket
from gateway.normalize.iracing import IRacingNormalizer, observe
from gateway.normalize.iracing_session import SessionFacts, facts_from, session_key
from gateway.records import Record

STALE_S = 3.0  # a source silent this long hands over to a teammate's PC
CATCH_UP_S = 0.5  # a PC this close behind the session's last used time may take over
MAX_SESSIONS = 64  # sessions remembered (a venue of many teams over a weekend)
MAX_VARS = 64  # variables kept per shim: the shim's set and a little room


@dataclass(slots=True)
class ShimView:
    facts: SessionFacts | None = None
    values: dict[str, Any] = field(default_factory=dict)
    last_s: float = -1e9
    key: str | None = None


class IRacingBox:
    def __init__(self, *, stale_s: float = STALE_S) -> None:
        self.stale_s = stale_s
        self.shims: dict[str, ShimView] = {}
        self.sessions: OrderedDict[str, IRacingNormalizer] = OrderedDict()
        self.source: dict[str, str] = {}  # session key -> shim id
        self.used_s: dict[str, float] = {}  # session key -> SessionTime of the last used view
        self.stats: Counter[str] = Counter()

    def on_frame(self, shim: str, kind: str, data: dict[str, Any], *, now_s: float,
                 ts_ns: int, mono_ns: int) -> list[Record]:
        """Records caused by one authenticated frame. Raises `MalformedPacket` on a bad body."""
        view = self.shims.setdefault(shim, ShimView())
        view.last_s = now_s
        if kind == "info":
            view.facts = facts_from(data)
            return []
        values = data.get("vars")
        if not isinstance(values, dict):
            raise MalformedPacket("bad_telemetry", "no vars map")
        before = view.values.get("SessionTime")
        if data.get("full"):
            view.values = {}
        view.values.update(values)
        after = view.values.get("SessionTime")
        if (view.key is not None and isinstance(before, (int, float))
                and isinstance(after, (int, float)) and after < before):
            self.used_s.pop(view.key, None)  # this PC's sim restarted: not a replay
        if len(view.values) > MAX_VARS:
            raise MalformedPacket("bad_telemetry", f"{len(view.values)} variables")
        if view.facts is None:
            self.stats["awaiting_info"] += 1
            return []
        num = view.values.get("SessionNum")
        if not isinstance(num, int):
            self.stats["awaiting_session_num"] += 1
            return []
        return self._feed(shim, view, view.facts, num, now_s, ts_ns, mono_ns)

    def _feed(self, shim: str, view: ShimView, facts: SessionFacts, num: int, now_s: float,
              ts_ns: int, mono_ns: int) -> list[Record]:
        key = session_key(facts, num)
        out: list[Record] = []
        if view.key is not None and view.key != key and self.source.get(view.key) == shim:
            out += self._flush(view.key, ts_ns, mono_ns)  # the session its source left ended
        view.key = key
        clock = view.values.get("SessionTime")
        t = float(clock) if isinstance(clock, (int, float)) else None  # None: cannot tell
        used = self.used_s.get(key)
        caught_up = used is None or t is None or t >= used - CATCH_UP_S
        if not self._is_source(key, shim, facts, now_s, caught_up=caught_up):
            self.stats["shadowed" if caught_up else "behind"] += 1
            return out
        if used is not None and t is not None and t < used:
            self.stats["behind"] += 1  # replayed from a buffer: the session is past it
            return out
        norm = self.sessions.get(key)
        if norm is None or norm.facts.car_idx != facts.car_idx:
            out += self._flush(key, ts_ns, mono_ns)
            norm = self.sessions[key] = IRacingNormalizer(key, facts, num,
                                                          rig=f"iracing-car{facts.car_idx}")
            while len(self.sessions) > MAX_SESSIONS:
                old, gone = self.sessions.popitem(last=False)
                out += gone.flush(ts_ns=ts_ns, mono_ns=mono_ns)
                self.source.pop(old, None)
                self.used_s.pop(old, None)
        else:
            norm.facts = facts  # the driver in the car changes with a swap
        if t is not None:
            self.used_s[key] = t
        obs = observe(view.values, facts, in_car=facts.in_car)
        # The stint machine's clock is the sim's session time: the lap-time wait then means
        # the same on a loaded box as in an .ibt ingest (`now_s` only times source handover).
        return out + norm.feed(obs, source=shim, now_s=obs.session_time_s, ts_ns=ts_ns,
                               mono_ns=mono_ns)

    def _flush(self, key: str, ts_ns: int, mono_ns: int) -> list[Record]:
        norm = self.sessions.get(key)
        return norm.flush(ts_ns=ts_ns, mono_ns=mono_ns) if norm is not None else []

    def _is_source(self, key: str, shim: str, facts: SessionFacts, now_s: float, *,
                   caught_up: bool) -> bool:
        current = self.source.get(key)
        if current == shim:
            return True
        if not caught_up:  # still replaying what the session has already been told
            return False
        cur = self.shims.get(current) if current else None
        cur_ok = (cur is not None and cur.key == key and now_s - cur.last_s < self.stale_s)
        cur_in_car = cur_ok and cur is not None and cur.facts is not None and cur.facts.in_car
        if not cur_ok or (facts.in_car and not cur_in_car):
            if current is not None:
                self.stats["source_changed"] += 1
            self.source[key] = shim
            return True
        return False
