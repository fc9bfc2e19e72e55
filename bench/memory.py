"""Memory: RSS per idle connection, server side and client side.

    .venv/bin/python -m bench memory [--rounds 3] [--quick]

N idle clients (`loadtool run`, one worker, send rate 0; on the reference server in rooms
of 10) hold connections to a fresh server for a while; VmRSS (/proc/<pid>/status) of the
server and of the generator is sampled every 0.25 s and the median of the second half of
the idle phase is kept. Done for a small and a large N, the cost of one connection is the
marginal one, (RSS(large) - RSS(small)) / (connected(large) - connected(small)), with the
connected counts read from the run's time series at the end of the idle phase: the
interpreter, imports and buffers that do not grow with N are left out. Variants alternate:
reference, node, reference, node, ...

Heartbeats: against the reference server clients send an app-level `ping` every 5 s and
the server sends WebSocket pings (its default 20 s). The seed Node server has no heartbeat
and relays every text frame to everyone (a `ping` would be broadcast), so against it the
clients are silent; its figure is what an idle `ws` connection costs. The client figure is
taken from the reference runs (heartbeats flowing). Target: <= 10 KB (KiB here) each.
"""

from __future__ import annotations

from typing import Any, Final

from .procs import Load, RunOutcome, loadtool_run, rss_kb, server
from .runner import Output, alternation, fmt, median, table

TARGET_KB: Final = 10.0
SERVERS: Final = ("reference", "node")


def _idle_rss(outcome: RunOutcome, load: Load, series: str) -> float | None:
    start = outcome.start_unix + load.connect_s + load.seconds / 2
    end = outcome.start_unix + load.connect_s + load.seconds
    values = [v for t, v in outcome.samples.get(series) if start <= t <= end and v > 0]
    return median(values)


def _connected_at(outcome: RunOutcome, second: int) -> int:
    rows = [row for row in outcome.results["timeseries"] if row["t"] <= second]
    return int(rows[-1]["connected"]) if rows else 0


def measure(name: str, clients: int, seconds: float) -> dict[str, Any]:
    load = Load(
        clients=clients,
        # rooms of 10 on the reference server: in one big room every join would send a
        # presence event to every member (N^2/2 frames), a flood, not idle connections
        rooms=max(1, clients // 10) if name == "reference" else 1,
        rate=0.0,
        seconds=seconds,
        heartbeat="5s" if name == "reference" else "off",
    )
    with server(name) as target:
        outcome = loadtool_run(
            load,
            target,
            {"server_rss": lambda _pid: rss_kb(target.pid), "client_rss": rss_kb},
            name="bench-memory",
        )
    totals = outcome.results["totals"]
    return {
        "clients": clients,
        "server_rss_kb": _idle_rss(outcome, load, "server_rss"),
        "client_rss_kb": _idle_rss(outcome, load, "client_rss"),
        "connects": totals["connects"],
        "connected": _connected_at(outcome, int(load.connect_s + load.seconds) - 1),
        "errors": totals["errors"],
    }


def _per_conn(small: dict[str, Any], large: dict[str, Any], key: str) -> float | None:
    a: float | None = small[key]
    b: float | None = large[key]
    if a is None or b is None or large["connected"] <= small["connected"]:
        return None
    return round((b - a) / int(large["connected"] - small["connected"]), 2)


def run(rounds: int, quick: bool, output: Output) -> dict[str, Any]:
    small_n, large_n = (100, 500) if quick else (500, 3000)
    seconds = 6.0 if quick else 14.0
    rows: list[dict[str, Any]] = []
    for r, name in alternation(SERVERS, rounds):
        small = measure(name, small_n, seconds)
        large = measure(name, large_n, seconds)
        server_kb = _per_conn(small, large, "server_rss_kb")
        client_kb = _per_conn(small, large, "client_rss_kb")
        row: dict[str, Any] = {
            "round": r,
            "variant": name,
            "small": small,
            "large": large,
            "server_kb_per_conn": server_kb,
            "client_kb_per_conn": client_kb,
        }
        rows.append(row)
        output.say(
            f"  memory round {r + 1} {name:<9} server {fmt(server_kb)} KiB/conn, "
            f"client {fmt(client_kb)} KiB/conn "
            f"({small['connected']} and {large['connected']} connected)"
        )
    med = {
        (name, side): median(r[f"{side}_kb_per_conn"] for r in rows if r["variant"] == name)
        for name in SERVERS
        for side in ("server", "client")
    }
    ref_server, node_server_kb = med[("reference", "server")], med[("node", "server")]
    client = med[("reference", "client")]

    def verdict(v: float | None) -> str:
        return "n/a" if v is None else ("met" if v <= TARGET_KB else "NOT met")

    output.say(
        f"\nmemory: RSS per idle connection, marginal between {small_n} and {large_n} "
        f"connections (median of {rounds} round(s))\n"
        + table(
            ["what", "KiB/connection", f"target <= {TARGET_KB:g}"],
            [
                ["reference server (heartbeats)", fmt(ref_server), verdict(ref_server)],
                ["seed Node server (no heartbeat)", fmt(node_server_kb), "(peer)"],
                ["loadtool simulated client (heartbeats)", fmt(client), verdict(client)],
            ],
        )
    )
    payload = {
        "metric": "VmRSS per idle connection, KiB (marginal between two connection counts)",
        "target": f"<= {TARGET_KB} KiB per idle server connection and per simulated client",
        "connections": [small_n, large_n],
        "idle_seconds": seconds,
        "rounds": rounds,
        "medians_kib_per_connection": {
            "reference_server": ref_server,
            "node_server": node_server_kb,
            "loadtool_client": client,
            "loadtool_client_against_node_no_heartbeat": med[("node", "client")],
        },
        "targets_met": {
            "reference_server": ref_server is not None and ref_server <= TARGET_KB,
            "loadtool_client": client is not None and client <= TARGET_KB,
        },
        "runs": rows,
    }

    def chart(figure: Any) -> None:
        ax = figure.add_subplot(1, 1, 1)
        labels = ["reference server", "seed Node server", "loadtool client"]
        values = [ref_server or 0, node_server_kb or 0, client or 0]
        ax.bar(labels, values, color=["tab:blue", "tab:orange", "tab:green"])
        ax.axhline(TARGET_KB, color="red", linestyle="--", label=f"target {TARGET_KB:g} KiB")
        ax.set_ylabel("KiB of RSS per idle connection")
        ax.set_title(f"Idle connection cost ({small_n} -> {large_n} connections)")
        ax.legend()

    output.save("memory", payload, chart)
    return payload
