"""Fan-out through Redis: one plain node vs one and two `--redis` nodes, side by side.

    .venv/bin/python -m bench.cluster [--clients 100] [--rate 2] [--seconds 5] [--rounds 3]

Each round runs three set-ups in turn, on this machine, with the same load as
bench/twsload.py (C clients in one room, each sending R messages/s for S seconds):

- `plain`: one `loadtool serve` (memory mode, no Redis);
- `redis-1`: one `loadtool serve --redis` node (a private redis-server, AOF fsync always);
- `redis-2`: two `--redis` nodes, clients split half and half.

After a warm-up (see `_warm_up`), it reads the CPU time of every server process and of
redis-server from /proc and prints, per set-up, the medians over the rounds of deliveries
per node CPU-second, microseconds of node CPU per delivery, microseconds of Redis CPU per
delivery, and the achieved wall-clock deliveries/s. "What Redis adds per delivery" is
redis-1 minus plain (node CPU), plus Redis's own CPU.
Bounded in count and time; loopback only; needs redis-server.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from trio_websocket import connect_websocket_url

from bench.twsload import ROOM, SECRET, _connect, _Counts, _cpu_seconds, _send
from loadtool import protocol as p

SETUPS = ("plain", "redis-1", "redis-2")
WARM_UP = 20  # messages through each node before measuring


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_redis(directory: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ready to accept connections" in line:
            break
    else:
        raise RuntimeError("redis-server exited before it was ready")
    return proc, f"redis://127.0.0.1:{port}/0"


def _start_node(*extra: str) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).parent / "loadtool"
    cmd = [str(exe), "serve", "--port", "0", "--secret", SECRET, "--log-level", "error",
           "--rate", "1000", "--burst", "1000", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _round(setup: str, args: argparse.Namespace) -> dict[str, Any]:
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            redis_pid = None
            if setup == "plain":
                node, url = _start_node()
                procs.append(node)
                urls = [url]
            else:
                redis, redis_url = _start_redis(Path(tmp))
                procs.append(redis)
                redis_pid = redis.pid
                urls = []
                for i in range(1 if setup == "redis-1" else 2):
                    node, url = _start_node("--redis", redis_url, "--node-id", f"bench-{i}")
                    procs.append(node)
                    urls.append(url)
            nodes = [p.pid for p in procs if p.pid != redis_pid]
            return trio.run(_run, args, urls, nodes, redis_pid)
        finally:
            for proc in reversed(procs):
                proc.kill()
                proc.wait()


async def _warm_up(url: str) -> None:
    """One client sends WARM_UP messages through `url` and reads them back, before the
    clock starts: coredis (and beartype, which it uses) builds each command's wrappers on
    first use, a one-off cost of some 0.5 CPU-seconds that is not fan-out."""
    async with trio.open_nursery() as nursery:
        token = p.mint_token(SECRET, "warm-up", [ROOM])
        ws = await connect_websocket_url(nursery, f"{url}?token={token}")
        while not (await ws.get_message()).startswith('{"type":"joined"'):
            pass  # a message sent before `joined` may come back only through history
        for i in range(WARM_UP):
            frame = p.SendMessage(id=f"w-{url}-{i}", room=ROOM, text="w")  # unique: dedupe
            await ws.send_message(p.encode(frame).decode())
        seen = 0
        while seen < WARM_UP:
            if (await ws.get_message()).startswith('{"type":"message"'):
                seen += 1
        await ws.aclose()


async def _run(
    args: argparse.Namespace, urls: list[str], nodes: list[int], redis_pid: int | None
) -> dict[str, Any]:
    for url in urls:
        await _warm_up(url)
    per_client = int(args.rate * args.seconds)
    counts = _Counts(expected=per_client * args.clients * args.clients)
    with trio.fail_after(args.seconds + 120):
        async with trio.open_nursery() as nursery:
            sockets = [
                await _connect(nursery, urls[n % len(urls)], n, counts) for n in range(args.clients)
            ]
            # Presence of the late joiners has settled once every client holds its joined.
            cpu0 = sum(_cpu_seconds(pid) for pid in nodes)
            redis0 = _cpu_seconds(redis_pid) if redis_pid else 0.0
            t0 = time.perf_counter()
            async with trio.open_nursery() as senders:
                for n, ws in enumerate(sockets):
                    senders.start_soon(_send, ws, n, args.clients, args.rate, per_client)
            with trio.move_on_after(30):
                await counts.done.wait()
            wall = time.perf_counter() - t0
            cpu = sum(_cpu_seconds(pid) for pid in nodes) - cpu0
            redis_cpu = (_cpu_seconds(redis_pid) - redis0) if redis_pid else 0.0
            nursery.cancel_scope.cancel()
    delivered = counts.delivered
    return {
        "expected": counts.expected,
        "delivered": delivered,
        "wall_s": round(wall, 2),
        "deliveries_per_node_cpu_s": round(delivered / cpu) if cpu else 0,
        "node_us_per_delivery": round(cpu / delivered * 1e6, 2) if delivered else 0.0,
        "redis_us_per_delivery": round(redis_cpu / delivered * 1e6, 2) if delivered else 0.0,
        "achieved_deliveries_per_s": round(delivered / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="messages/s per client")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("bench.cluster needs redis-server (apt-get install redis-server)")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SETUPS}
    for _ in range(args.rounds):
        for setup in SETUPS:  # interleaved, so drifting machine load hits all alike
            result = _round(setup, args)
            print(setup, result, flush=True)
            runs[setup].append(result)
    medians = {
        setup: {
            key: statistics.median(r[key] for r in results)
            for key in (
                "deliveries_per_node_cpu_s",
                "node_us_per_delivery",
                "redis_us_per_delivery",
                "achieved_deliveries_per_s",
            )
        }
        for setup, results in runs.items()
    }
    for setup, m in medians.items():
        print(f"median {setup}: {m}")
    plain, one = medians["plain"], medians["redis-1"]
    added = one["node_us_per_delivery"] - plain["node_us_per_delivery"]
    print(
        f"Redis adds per delivery: {added:.2f} us of node CPU + "
        f"{one['redis_us_per_delivery']:.2f} us of Redis CPU; "
        f"node CPU-s ratio redis-1/plain: "
        f"{one['node_us_per_delivery'] / plain['node_us_per_delivery']:.2f}"
    )


if __name__ == "__main__":
    main()
