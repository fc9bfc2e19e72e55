"""Cost of the delivery ledger's hot path: microseconds per `Ledger.received()` call.

    .venv/bin/python -m bench.ledger_cost [--rounds 7] [--receipts 200000]

Two layouts, each fed in-order deliveries (every member gets every message of its room):
1,000 clients in one room, and 100 rooms of 10 clients. Each round sends enough messages
for about `--receipts` receipts and times only the `received()` calls; the same loops
around a no-op function are timed too, so the table shows the call cost with and without
the loop around it. The median over the rounds is reported. A third layout repeats the
one-room case with 1 % of receipts missing, which keeps gaps open (the slow path).

Peak memory is measured in a separate run under tracemalloc (which slows Python down, so
never at the same time as the timing): two rounds of receipts plus `state()` and
`export()` at the end. Last, the correlation decode: `decode_text` and the receive path's
`decode_fields`. The whole receive chain (frame, JSON, decode, ledger) is
bench/receive_cost.py. A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence

import attrs

from loadtool.results.correlation import decode_fields, decode_text, encode_text, run_prefix
from loadtool.results.ledger import Expect, Ledger

MS = 1_000_000  # ns
Message = tuple[int, int, int, int]  # sender, seq, room, intended_ns


@attrs.frozen
class Layout:
    name: str
    rooms_of: list[list[int]]
    loss: float = 0.0  # fraction of receipts dropped


def one_room(clients: int) -> list[list[int]]:
    return [[0] for _ in range(clients)]


def rooms_of_ten(rooms: int) -> list[list[int]]:
    return [[client // 10] for client in range(rooms * 10)]


@attrs.define
class Feed:
    """Generates rounds of messages and the receipts of each, continuing seqs across rounds."""

    layout: Layout
    receipts_per_round: int
    seqs: list[int] = attrs.field(init=False)
    members: dict[int, list[int]] = attrs.field(init=False)
    now: int = 0
    rng: random.Random = attrs.field(factory=lambda: random.Random(1))

    def __attrs_post_init__(self) -> None:
        self.seqs = [0] * len(self.layout.rooms_of)
        self.members = {}
        for client, rooms in enumerate(self.layout.rooms_of):
            for room in rooms:
                self.members.setdefault(room, []).append(client)

    def round(self) -> list[tuple[Message, list[int]]]:
        """[(message, recipients)] for about `receipts_per_round` receipts."""
        out: list[tuple[Message, list[int]]] = []
        receipts = 0
        clients = len(self.layout.rooms_of)
        sender = 0
        while receipts < self.receipts_per_round:
            room = self.layout.rooms_of[sender][0]
            self.seqs[sender] += 1
            self.now += MS // 10
            recipients = self.members[room]
            if self.layout.loss:
                recipients = [r for r in recipients if self.rng.random() >= self.layout.loss]
            out.append(((sender, self.seqs[sender], room, self.now), recipients))
            receipts += len(recipients)
            sender = (sender + 1) % clients
        return out


def new_ledger(layout: Layout) -> Ledger:
    ledger = Ledger(len(layout.rooms_of), layout.rooms_of, Expect.MEMBERS)
    for client, rooms in enumerate(layout.rooms_of):
        ledger.connected(client, 0)
        for room in rooms:
            ledger.member_since(client, room, 0)
    return ledger


def _noop(recipient: int, sender: int, seq: int, room: int, intended_ns: int, now_ns: int) -> None:
    pass


def timed_round(
    receive: Callable[[int, int, int, int, int, int], object],
    batch: Sequence[tuple[Message, list[int]]],
) -> tuple[float, int]:
    """Seconds spent delivering `batch` through `receive`, and the number of calls."""
    calls = 0
    start = time.perf_counter()
    for (sender, seq, room, intended), recipients in batch:
        now = intended + 2 * MS
        for recipient in recipients:
            receive(recipient, sender, seq, room, intended, now)
        calls += len(recipients)
    return time.perf_counter() - start, calls


def measure(layout: Layout, rounds: int, receipts: int) -> tuple[float, float]:
    """Median microseconds per call: (received() with its loop, received() alone)."""
    ledger = new_ledger(layout)
    feed = Feed(layout, receipts)
    gross: list[float] = []
    net: list[float] = []
    for _ in range(rounds + 1):  # the first round warms up (allocates per-recipient arrays)
        batch = feed.round()
        for message, _recipients in batch:
            ledger.sent(*message)
        seconds, calls = timed_round(ledger.received, batch)
        loop_seconds, _ = timed_round(_noop, batch)
        gross.append(seconds / calls * 1e6)
        net.append((seconds - loop_seconds) / calls * 1e6)
    return statistics.median(gross[1:]), statistics.median(net[1:])


def peak_memory(layout: Layout, receipts: int) -> tuple[float, float, int]:
    """(peak MB, MB still held at the end, receipts fed) under tracemalloc."""
    tracemalloc.start()
    try:
        ledger = new_ledger(layout)
        feed = Feed(layout, receipts)
        fed = 0
        for _ in range(2):
            batch = feed.round()
            for message, _recipients in batch:
                ledger.sent(*message)
            fed += timed_round(ledger.received, batch)[1]
            del batch
        ledger.export(feed.now + MS)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6, current / 1e6, fed


def decode_cost(rounds: int, decode: Callable[[str], object]) -> float:
    text = encode_text("0a1b2c3d", 123, 4567, 12, 1_764_000_000_123_456_789, 128)
    samples = []
    for _ in range(rounds):
        n = 100_000
        start = time.perf_counter()
        for _ in range(n):
            decode(text)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--receipts", type=int, default=200_000, help="receipts per round")
    args = parser.parse_args()
    layouts = [
        Layout("1,000 clients, one room", one_room(1000)),
        Layout("100 rooms of 10 clients", rooms_of_ten(100)),
        Layout("1,000 clients, one room, 1% lost", one_room(1000), loss=0.01),
    ]
    print(f"received(): median of {args.rounds} rounds of ~{args.receipts:,} receipts")
    print(f"{'layout':<36} {'us/call':>8} {'w/o loop':>9} {'peak MB':>8} {'held MB':>8}")
    for layout in layouts:
        gross, net = measure(layout, args.rounds, args.receipts)
        peak, held, fed = peak_memory(layout, args.receipts)
        print(f"{layout.name:<36} {gross:8.2f} {net:9.2f} {peak:8.1f} {held:8.1f}")
    print(f"(memory: after {fed:,} receipts and an export; tracemalloc)")
    print(f"decode_text(): {decode_cost(args.rounds, decode_text):.2f} us/call (128-byte text)")
    prefix = run_prefix("0a1b2c3d")
    fields = decode_cost(args.rounds, lambda text: decode_fields(text, prefix))
    print(f"decode_fields(): {fields:.2f} us/call (the receive path's form, with a lambda around)")


if __name__ == "__main__":
    main()
