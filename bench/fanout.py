"""Fan-out cost of the reference server: deliveries per server CPU-second.

    .venv/bin/python -m bench.fanout [--clients 100] [--rate 2] [--seconds 10]

Starts `loadtool serve` as its own process, connects C clients to one room from this
process, has each send R messages/s for S seconds, and reads the server's CPU time from
/proc. deliveries / server CPU-seconds is the fan-out rate one core of the server
sustains, independent of how fast this (stock trio-websocket) client side is; the achieved
wall-clock rate is printed too. Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import attrs
import trio
from trio_websocket import WebSocketConnection, connect_websocket_url

from loadtool import protocol as p

SECRET = "bench-secret-0123456789abcdef0123"
ROOM = "bench"


@attrs.define
class _Counts:
    expected: int = 0
    delivered: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _connect(nursery: trio.Nursery, url: str, n: int, counts: _Counts) -> WebSocketConnection:
    token = p.mint_token(SECRET, f"u{n}", [ROOM])
    ws = await connect_websocket_url(nursery, f"{url}?token={token}")
    while not (await ws.get_message()).startswith('{"type":"joined"'):
        pass

    async def reader() -> None:
        while True:
            if (await ws.get_message()).startswith('{"type":"message"'):
                counts.delivered += 1
                if counts.delivered == counts.expected:
                    counts.done.set()

    nursery.start_soon(reader)
    return ws


async def _send(ws: WebSocketConnection, n: int, clients: int, rate: float, count: int) -> None:
    interval = 1.0 / rate
    start = trio.current_time() + interval * n / clients  # spread senders over the interval
    for i in range(count):
        await trio.sleep_until(start + i * interval)
        frame = p.SendMessage(id=f"{n}-{i}", room=ROOM, text="x" * 64)
        await ws.send_message(p.encode(frame).decode())


def _round(args: argparse.Namespace) -> dict[str, float]:
    exe = Path(sys.executable).parent / "loadtool"
    cmd = [str(exe), "serve", "--port", "0", "--secret", SECRET, "--log-level", "error",
           "--rate", "1000", "--burst", "1000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        return trio.run(_run, args, url, proc.pid)
    finally:
        proc.kill()
        proc.wait()


async def _run(args: argparse.Namespace, url: str, pid: int) -> dict[str, float]:
    per_client = int(args.rate * args.seconds)
    counts = _Counts(expected=per_client * args.clients * args.clients)
    with trio.fail_after(args.seconds + 120):
        async with trio.open_nursery() as nursery:
            sockets = [await _connect(nursery, url, n, counts) for n in range(args.clients)]
            cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
            async with trio.open_nursery() as senders:
                for n, ws in enumerate(sockets):
                    senders.start_soon(_send, ws, n, args.clients, args.rate, per_client)
            with trio.move_on_after(30):
                await counts.done.wait()
            wall, cpu = time.perf_counter() - t0, _cpu_seconds(pid) - cpu0
            nursery.cancel_scope.cancel()
    return {
        "clients": args.clients,
        "expected": counts.expected,
        "delivered": counts.delivered,
        "wall_s": round(wall, 2),
        "server_cpu_s": round(cpu, 2),
        "deliveries_per_server_cpu_s": round(counts.delivered / cpu) if cpu else 0,
        "server_us_per_delivery": round(cpu / counts.delivered * 1e6, 2) if counts.delivered else 0,
        "achieved_deliveries_per_s": round(counts.delivered / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="messages/s per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = [_round(args) for _ in range(args.rounds)]
    for r in results:
        print(r)
    rates = sorted(r["deliveries_per_server_cpu_s"] for r in results)
    print(f"median deliveries per server CPU-second: {rates[len(rates) // 2]}")


if __name__ == "__main__":
    main()
