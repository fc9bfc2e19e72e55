"""Many idle connections: RSS per connection on each side, and whether they all hold.

    .venv/bin/python -m bench.connections [--connections 100000] [--per-process 16000]
        [--source-count 8] [--hold 60] [--heartbeat 10] [--out FILE.json]

A process here may hold at most `ulimit -n` descriptors (20,000 on the machine this was
written on, and the hard limit cannot be raised without CAP_SYS_RESOURCE), so the
connections are split into shards of `--per-process`: each shard is one `loadtool serve`
process and one worker process running real simulated clients (`SimClient` with the
worker's demux, no sends, app-level pings every `--heartbeat` seconds and answering the
server's WebSocket pings). Clients dial from 127.0.0.2, 127.0.0.3, ... (`--source-count`
addresses; 0: the kernel's choice) so loopback stays clear of
ephemeral-port exhaustion. Once every client is connected it holds for `--hold` seconds,
then checks that nothing dropped: every client still connected, no close, no dead peer,
no failed dial, and the server still counting them all (GET /healthz).

RSS per idle connection = (RSS with everything connected - RSS before the first client)
/ connections, per process (server; each worker). Bounded: every phase has a deadline,
and the script ends only the processes it started, by PID. Loopback only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Final

SECRET: Final = "bench-connections-0123456789abcdef"
_DIALERS: Final = 64  # concurrent dials per worker
_DIAL_WAIT_S: Final = 15.0  # seconds a dialer waits for one client before the next
_MARGIN_FDS: Final = 200


def _raise_nofile(n: int) -> None:
    """Raise this process's open-file limit towards n (the hard limit stays: lifting it
    needs CAP_SYS_RESOURCE). Raises SystemExit when n does not fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n <= hard or (hard == resource.RLIM_INFINITY and soft < n):
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    elif n > hard:
        raise SystemExit(f"{n} descriptors needed, the hard limit is {hard}: lower --per-process")


def _rss_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# --- worker ------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Open `--count` idle simulated clients, report, hold until told to stop, report."""
    _raise_nofile(args.count + _MARGIN_FDS)
    import random

    import trio

    from loadtool import protocol as p
    from loadtool.client.pacer import Pacer
    from loadtool.client.policies import PolicyName, make_backoff
    from loadtool.client.simclient import ClientPlan, Dialect, SimClient
    from loadtool.client.stats import ClientStats
    from loadtool.client.transport import Endpoint
    from loadtool.netio.demux import Demux
    from loadtool.results.ledger import Expect, Ledger
    from loadtool.results.recorder import Recorder
    from loadtool.results.runclock import RunClock
    from loadtool.results.timeseries import TimeSeries

    sources = args.sources.split(",")

    async def main() -> None:
        gc.collect()
        rss0 = _rss_kb()
        clock = RunClock.from_system()
        n = args.count
        rooms_of = [[i // 2] for i in range(n)]  # idle rooms of two
        recorder = Recorder(
            ledger=Ledger(n, rooms_of, Expect.MEMBERS), series=TimeSeries(clock.now_ns())
        )
        stats = ClientStats()
        demux = Demux()
        pacer = Pacer(clock)  # one timer for every client's heartbeats, as in the swarm
        base = Endpoint.from_url(args.url)
        rng = random.Random(args.worker)

        def client(i: int) -> SimClient:
            name = f"w{args.worker}-r{i // 2}"
            plan = ClientPlan(
                index=i,
                rooms=(i // 2,),
                room_names=(name,),
                endpoint=Endpoint(
                    url=base.url,
                    host=base.host,
                    port=base.port,
                    target=base.target,
                    source=sources[i % len(sources)] if sources != ["none"] else None,
                ),
                token=p.mint_token(SECRET, f"w{args.worker}-u{i}", [name], ttl_s=3600),
                explicit_join=False,
                dialect=Dialect.V1,
                run_id="conn",
                heartbeat_s=args.heartbeat,
                outbox=False,
                resync=False,
            )
            return SimClient(
                plan,
                ledger=recorder,
                stats=stats,
                clock=clock,
                backoff=make_backoff(PolicyName.EXPONENTIAL, base=1.0, cap=5.0, rng=rng),
                rng=rng,
                schedule=lambda _previous: None,
                size=lambda _rng: 0,
                demux=demux,
                pacer=pacer,
            )

        sims: list[SimClient] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(demux.run)
            nursery.start_soon(pacer.run)
            todo = iter(range(n))

            async def dialer() -> None:
                for i in todo:
                    sim = client(i)
                    sims.append(sim)
                    nursery.start_soon(sim.run)
                    # One dial's worth of waiting: a client whose first dial failed keeps
                    # retrying on its own, and must not hold this dialer up.
                    with trio.move_on_after(_DIAL_WAIT_S):
                        await sim.connected.wait()

            started = time.monotonic()
            with trio.move_on_after(args.connect_timeout):
                async with trio.open_nursery() as dials:
                    for _ in range(_DIALERS):
                        dials.start_soon(dialer)
            dial_s = time.monotonic() - started
            gc.collect()
            ready = {
                "worker": args.worker,
                "clients": n,
                "connected": recorder.connected_now,
                "dial_s": round(dial_s, 1),
                "rss_before_kb": rss0,
                "rss_kb": _rss_kb(),
            }
            print(json.dumps(ready), flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)  # the parent says stop
            done = {
                "worker": args.worker,
                "connected": recorder.connected_now,
                "closes": {str(k): v for k, v in stats.closes.items()},
                "dead_peers": stats.dead_peers,
                "connect_failures": stats.connect_failures,
                "refused": {str(k): v for k, v in stats.refused.items()},
                "pings_sent": stats.pings,
                "rss_kb": _rss_kb(),
            }
            print(json.dumps(done), flush=True)
            nursery.cancel_scope.cancel()

    trio.run(main)


# --- parent ------------------------------------------------------------------------------


def _healthz(url: str) -> int:
    http = url.replace("ws://", "http://").rstrip("/") + "/healthz"
    with urllib.request.urlopen(http, timeout=30) as answer:
        return int(json.load(answer)["connections"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    total = args.connections
    shards = max(1, -(-total // args.per_process))
    per_shard = [total // shards + (1 if w < total % shards else 0) for w in range(shards)]
    sources = [f"127.0.0.{2 + s}" for s in range(args.sources)] or ["none"]
    procs: list[subprocess.Popen[str]] = []
    try:
        servers = [_start_server(args, count, procs) for count in per_shard]
        server_rss0 = [_rss_kb(srv.pid) for srv, _ in servers]
        workers = []
        for w, count in enumerate(per_shard):
            share = ",".join(sources[w :: len(per_shard)] or sources)
            cmd = [
                sys.executable, "-m", "bench.connections", "--worker", str(w), "--count",
                str(count), "--url", servers[w][1], "--sources", share, "--heartbeat",
                str(args.heartbeat), "--connect-timeout", str(args.connect_timeout),
            ]  # fmt: skip
            workers.append(
                subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
            procs.append(workers[-1])
        ready = [json.loads(_line(wp)) for wp in workers]
        connected = sum(r["connected"] for r in ready)
        server_rss = [_rss_kb(srv.pid) for srv, _ in servers]
        server_count = sum(_healthz(url) for _, url in servers)
        _say(f"{connected}/{total} connected; servers count {server_count}; holding {args.hold}s")
        time.sleep(args.hold)  # the load itself: idle connections exchanging heartbeats
        server_count_end = sum(_healthz(url) for _, url in servers)
        server_rss_end = sum(_rss_kb(srv.pid) for srv, _ in servers)
        for wp in workers:
            assert wp.stdin is not None
            wp.stdin.write("stop\n")
            wp.stdin.flush()
        done = [json.loads(_line(wp)) for wp in workers]
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()
    client_rss = sum(r["rss_kb"] - r["rss_before_kb"] for r in ready)
    dropped = (
        sum(sum(d["closes"].values()) for d in done)
        + sum(d["dead_peers"] + d["connect_failures"] for d in done)
        + sum(sum(d["refused"].values()) for d in done)
    )
    still = sum(d["connected"] for d in done)
    return {
        "connections": total,
        "shards": shards,
        "source_addresses": len(sources),
        "heartbeat_s": args.heartbeat,
        "hold_s": args.hold,
        "connected": connected,
        "connected_after_hold": still,
        "server_connections": server_count,
        "server_connections_after_hold": server_count_end,
        "dropped": dropped,
        "pings_sent_by_clients": sum(d["pings_sent"] for d in done),
        "held": still == total and server_count_end == total and dropped == 0,
        "dial_s": max(r["dial_s"] for r in ready),
        "server_rss_kb": sum(server_rss),
        "server_rss_kb_after_hold": server_rss_end,
        "client_rss_kb": sum(r["rss_kb"] for r in ready),
        "server_kb_per_connection": round(
            (sum(server_rss) - sum(server_rss0)) / max(connected, 1), 2
        ),
        "client_kb_per_connection": round(client_rss / max(connected, 1), 2),
        "workers_detail": done,
    }


def _start_server(
    args: argparse.Namespace, count: int, procs: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable, "-m", "loadtool", "serve", "--port", "0", "--secret", SECRET,
        "--max-connections", str(count + 100), "--max-user-connections", "10",
        "--heartbeat", f"{args.heartbeat}s", "--idle-timeout", f"{args.heartbeat * 3}s",
        "--log-level", "error",
    ]  # fmt: skip
    server = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: _raise_nofile(count + _MARGIN_FDS),
    )
    procs.append(server)
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    if not url.startswith("ws://"):
        raise RuntimeError(f"the server did not start: {url!r}")
    _healthz(url)
    return server, url


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker {proc.pid} ended early (exit {proc.wait()})")
    return line


def _say(text: str) -> None:
    if os.environ.get("CI") != "true":
        print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--per-process", dest="per_process", type=int, default=16_000,
                        help="connections per server process and per worker process")  # fmt: skip
    parser.add_argument("--sources", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source-count", dest="source_count", type=int, default=8,
                        help="loopback source addresses 127.0.0.2...")  # fmt: skip
    parser.add_argument("--hold", type=float, default=60.0, help="seconds to hold")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds")
    parser.add_argument("--connect-timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args)
        return
    args.sources = args.source_count
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
