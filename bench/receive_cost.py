"""Cost of the generator's receive chain in a hot loop: microseconds per delivery.

    .venv/bin/python -m bench.receive_cost [--rounds 7] [--clients 100] [--messages 2000]

What one delivery costs in a worker, minus the socket: the server's frame bytes go
through the client's `FrameParser`, then `SimClient._handle` (JSON, correlation decode,
re-sync bookkeeping) and the `Recorder` (ledger: loss/duplicate/order accounting and the
latency histogram; time series: the per-second counts and latency). The frames are what
the reference server sends for a room of `--clients` members (a `message` per delivery
and an `ack` to its sender), built once, then fed to every client in broadcast order, one
frame per feed, as the demux reads them at light load. No sockets and no event loop: the
in-situ cost adds the `read` syscall (~4 us on loopback here) and runs cache-colder
(docs/performance.md). The median of the rounds is reported. A benchmark, not a test:
nothing is asserted. Runs against any tree (`cd <tree> && python -m bench.receive_cost`)
for A/B comparisons.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any, Final

import orjson

from loadtool.client.policies import ExponentialBackoff
from loadtool.client.simclient import ClientPlan, Dialect, SimClient
from loadtool.client.stats import ClientStats
from loadtool.client.transport import Endpoint
from loadtool.client.wsframes import FrameParser
from loadtool.results.correlation import encode_text, room_name
from loadtool.results.ledger import Expect, Ledger
from loadtool.results.recorder import Recorder
from loadtool.results.runclock import RunClock
from loadtool.results.timeseries import TimeSeries

RUN_ID: Final = "0a1b2c3d"
TEXT: Final = 128
GAP_NS: Final = 500_000  # between intended sends


def server_frame(obj: dict[str, Any]) -> bytes:
    """An unmasked server text frame (RFC 6455 §5.2), as the reference server writes it."""
    payload = orjson.dumps(obj)
    size = len(payload)
    head = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + size.to_bytes(2, "big")
    return head + payload


def make_clients(n: int, recorder: Recorder, clock: RunClock) -> list[SimClient]:
    endpoint = Endpoint.from_url("ws://127.0.0.1:9/")
    stats = ClientStats()
    sims = []
    for index in range(n):
        plan = ClientPlan(
            index=index,
            rooms=(0,),
            room_names=(room_name(0),),
            endpoint=endpoint,
            token=None,
            explicit_join=False,
            dialect=Dialect.V1,
            run_id=RUN_ID,
            heartbeat_s=None,
            outbox=False,
            resync=True,
        )
        sims.append(
            SimClient(
                plan,
                ledger=recorder,
                stats=stats,
                clock=clock,
                backoff=ExponentialBackoff(base=1.0, cap=1.0),
                rng=random.Random(index),
                schedule=lambda _prev: None,
                size=lambda _rng: TEXT,
            )
        )
    return sims


def run(clients: int, messages: int, rounds: int) -> list[float]:
    clock = RunClock.from_system()
    start = clock.now_ns()
    ledger = Ledger(clients, [[0]] * clients, Expect.MEMBERS)
    recorder = Recorder(ledger=ledger, series=TimeSeries(start))
    sims = make_clients(clients, recorder, clock)
    parsers = [FrameParser() for _ in sims]
    for index, sim in enumerate(sims):
        recorder.connected(index, start)
        sim._joined({"type": "joined", "room": room_name(0), "seq": 0})
    seqs = [0] * clients
    room_seq = 0
    per_round: list[float] = []
    for _ in range(rounds + 1):  # the first round warms up
        batch: list[tuple[int, bytes]] = []  # (recipient, frame) in broadcast order
        for m in range(messages):
            sender = m % clients
            seqs[sender] += 1
            room_seq += 1
            intended = clock.now_ns() - 2_000_000 + m * GAP_NS // messages
            text = encode_text(RUN_ID, sender, seqs[sender], 0, intended, TEXT)
            msg_id = f"{RUN_ID}-{sender}-{seqs[sender]}"
            recorder.sent(sender, seqs[sender], 0, intended)
            ack = {"type": "ack", "id": msg_id, "room": room_name(0), "seq": room_seq}
            batch.append((sender, server_frame({**ack, "duplicate": False})))
            frame = server_frame(
                {
                    "type": "message",
                    "id": msg_id,
                    "room": room_name(0),
                    "senderId": f"user{sender}",
                    "text": text,
                    "sentAt": "2026-11-29T05:03:50.901Z",
                    "seq": room_seq,
                }
            )
            batch.extend((recipient, frame) for recipient in range(clients))
        deliveries = sum(1 for _, f in batch if b'"message"' in f)
        handles = [sim._handle for sim in sims]
        feeds = [parser.feed for parser in parsers]
        t0 = time.process_time()
        for recipient, frame in batch:
            texts, _controls = feeds[recipient](frame)
            handles[recipient](texts)
        per_round.append((time.process_time() - t0) / deliveries * 1e6)
    if recorder.delivered_count != deliveries * (rounds + 1):
        raise SystemExit(f"accounting is off: {recorder.delivered_count} delivered")
    return per_round[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000, help="messages per round")
    args = parser.parse_args()
    samples = run(args.clients, args.messages, args.rounds)
    print(
        f"receive chain, {args.clients} clients in one room: "
        f"{statistics.median(samples):.2f} us per delivery "
        f"(median of {args.rounds} rounds; min {min(samples):.2f}, max {max(samples):.2f})"
    )


if __name__ == "__main__":
    main()
