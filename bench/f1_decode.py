"""F1 decode speed: ours vs the `f1-packets` package (2025 release) on a real 60 Hz mix.

The mix is one second of what a rig sends at the 60 Hz menu rate in format 2025 (356
packets: Motion, Lap Data, Car Telemetry, Car Status and Motion Ex 60 each, Session and Car
Setups 2, Participants 0.2, Car Damage 10, Session History and Tyre Sets 20, Lap Positions and
one event 1), built from the real F1 25 packets in ../shared/data/f1 (z0mt3c-f1-telemetry-
client/2025.json). That file has no Lap Positions packet (id 15): one is made with our encoder
and said so. Both sides decode every field of every packet: ours into NamedTuples
(`decode_packet`), f1-packets into dicts (`resolve(packet).to_dict()`, its documented way).
Also prints our rate for the format 2024 mix. The two sides take turns, one round of the mix
each, so load from other processes hits both alike. Bounded: until each side has used
--seconds on average, or --max-rounds rounds, whichever comes first.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/f1_decode.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.decode.f1 import LAYOUTS, decode_packet, encode_packet
from gateway.decode.f1.header import Header

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "f1"
RATES = {0: 60, 1: 2, 2: 60, 3: 1, 4: 0.2, 5: 2, 6: 60, 7: 60, 10: 10, 11: 20, 12: 20, 13: 60,
         15: 1}
"""Packets per second per id at the 60 Hz menu rate (f1-udp.md), format 2025."""


def real_packets(fmt: int) -> dict[int, bytes]:
    """One real datagram per packet id of `fmt`, from the shared data."""
    found: dict[int, bytes] = {}
    for path in sorted((DATA / "z0mt3c-f1-telemetry-client").glob("*.json")):
        for line in path.read_text().splitlines():
            msg = json.loads(line)["message"]
            data = bytes(msg["data"] if isinstance(msg, dict) else msg)
            if int.from_bytes(data[:2], "little") == fmt:
                found.setdefault(data[6], data)
    for path in sorted((DATA / "maciejpedzich-f1-game-packet-parser").glob(f"{fmt}-*.bin")):
        data = path.read_bytes()
        if "-03-" not in path.name or path.name.endswith("FTLP.bin"):
            found.setdefault(data[6], data)
    return found


def mix(fmt: int) -> list[bytes]:
    packets = real_packets(fmt)
    if fmt >= 2025 and 15 not in packets:  # no real one published: made with our encoder
        h = Header(fmt, 25, 1, 1, 1, 15, 1, 1.0, 1, 1, 255, 255)
        body = LAYOUTS[(fmt, 15)].zero._replace(num_laps=3, lap_start=0)
        packets[15] = encode_packet(h, body)
    out: list[bytes] = []
    for packet_id, rate in RATES.items():
        if packet_id in packets:
            out += [packets[packet_id]] * max(1, round(rate))
    random.Random(1).shuffle(out)
    return out


def rates(decoders: list[Callable[[bytes], Any]], packets: list[bytes], seconds: float,
          max_rounds: int) -> list[float]:
    """Packets decoded per second by each decoder, over whole rounds of the mix. The decoders
    take turns round by round, so a change in the machine's load (2 shared CPUs) hits every
    side alike and the ratio stays fair."""
    for decode in decoders:
        for datagram in packets:  # warm up (and prove every packet decodes)
            decode(datagram)
    spent = [0.0] * len(decoders)
    rounds = 0
    while rounds < max_rounds and sum(spent) < seconds * len(decoders):
        for i, decode in enumerate(decoders):
            t0 = time.perf_counter()
            for datagram in packets:
                decode(datagram)
            spent[i] += time.perf_counter() - t0
        rounds += 1
    return [rounds * len(packets) / s for s in spent]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="time per side (default 3)")
    p.add_argument("--max-rounds", type=int, default=100_000, help="cap on rounds of the mix")
    args = p.parse_args(argv)
    if not DATA.is_dir():
        print(f"f1_decode: {DATA} not present; nothing to measure", file=sys.stderr)
        return 1
    try:
        from f1.packets import resolve  # type: ignore[import-not-found]
    except ImportError:
        print("f1_decode: f1-packets is not installed: pip install -e '.[bench]'",
              file=sys.stderr)
        return 1

    packets_2025 = mix(2025)
    print(f"mix: {len(packets_2025)} packets, {sum(map(len, packets_2025))} bytes "
          f"(one second of one rig at 60 Hz, format 2025)")
    ours, theirs = rates([decode_packet, lambda d: resolve(d).to_dict()], packets_2025,
                         args.seconds, args.max_rounds)
    ours_2024, = rates([decode_packet], mix(2024), args.seconds, args.max_rounds)
    print(f"ours, format 2025:        {ours:10,.0f} packets/s ({ours / 356:.1f} rigs at 60 Hz)")
    print(f"f1-packets 2025.1.1:      {theirs:10,.0f} packets/s (resolve().to_dict())")
    print(f"ours, format 2024:        {ours_2024:10,.0f} packets/s")
    print(f"f1_decode: {ours / theirs:.1f}x f1-packets (goal >= 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
