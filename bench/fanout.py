"""Server fan-out: deliveries per server CPU-second, reference server vs the seed Node server.

    .venv/bin/python -m bench fanout [--rounds 3] [--quick]

The same client load (`loadtool run`, one worker, in its own process) drives both servers
in alternation (reference, node, reference, node, ...). Server CPU is read from
/proc/<pid>/stat (utime + stime) every 0.25 s, and the deliveries the server made by its
own account at the same moments: the reference server's `loadtool_deliveries_total`
(/metrics), the Node server's write syscalls (/proc/<pid>/io `syscw`: `ws` writes each
frame with one call). Both are taken over the steady part of the run only (the busy span
of the delivery counter with a fifth cut from each end), so connects, token checks and the
drain are left out, and a client that reads late does not shift the window.

The seed Node server has a single broadcast group: every connected client gets every
message. Its equivalent of "R rooms of M" is therefore one group of M clients sending R
times as fast: the same messages/s in, the same fan-out per message and the same
deliveries/s out, on M connections instead of R * M (fewer sockets for epoll to watch,
and several messages may arrive per read: if anything, in Node's favour). One room of 100
is the same load on both.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from .procs import BenchError, Load, RunOutcome, Server, loadtool_run, server
from .runner import Output, active_window, alternation, fmt, summarise, summary_rows, table

TARGET_RATIO: Final = 1.2  # reference >= 1.2x Node's deliveries per server CPU-second
SERVERS: Final = ("reference", "node")


@attrs.frozen
class Layout:
    name: str
    reference: Load
    node: Load

    def load_for(self, server_name: str) -> Load:
        return self.reference if server_name == "reference" else self.node


def layouts(seconds: float) -> list[Layout]:
    """One room of 100; 100 rooms of 10; 1,000 rooms of 2 (~8-10k deliveries/s each)."""
    return [
        Layout(
            "one room of 100",
            Load(clients=100, rooms=1, rate=1.0, seconds=seconds),
            Load(clients=100, rooms=1, rate=1.0, seconds=seconds),
        ),
        Layout(
            "100 rooms of 10",
            Load(clients=1000, rooms=100, rate=1.0, seconds=seconds),
            Load(clients=10, rooms=1, rate=100.0, seconds=seconds),
        ),
        Layout(
            "1,000 rooms of 2",
            Load(clients=2000, rooms=1000, rate=2.0, seconds=seconds),
            Load(clients=2, rooms=1, rate=2000.0, seconds=seconds),
        ),
    ]


def measure_once(layout: Layout, target: Server) -> dict[str, Any]:
    load = layout.load_for(target.name)
    outcome: RunOutcome = loadtool_run(
        load,
        target,
        {"server_cpu": lambda _pid: target.cpu(), "deliveries": lambda _pid: target.deliveries()},
        name="bench-fanout",
    )
    cpu_points = outcome.samples.get("server_cpu")
    done = outcome.samples.get("deliveries")
    window = active_window(done)
    cpu = delivered = 0.0
    seconds = 0.0
    if window is not None:
        i, j = window
        cpu = cpu_points[j][1] - cpu_points[i][1]
        delivered = done[j][1] - done[i][1]
        seconds = done[j][0] - done[i][0]
    totals = outcome.results["totals"]
    return {
        "layout": layout.name,
        "variant": target.name,
        "clients": load.clients,
        "rooms": load.rooms,
        "rate_per_client": load.rate,
        "offered_deliveries_per_s": load.deliveries_per_s,
        "window_s": round(seconds, 2),
        "window_deliveries": int(delivered),
        "window_server_cpu_s": round(cpu, 3),
        "server_us_per_delivery": round(cpu / delivered * 1e6, 3) if delivered else None,
        "deliveries_per_server_cpu_s": round(delivered / cpu) if cpu > 0 else None,
        "achieved_deliveries_per_s": round(delivered / seconds) if seconds else None,
        "client_delivered": totals["delivered"],
        "lost": totals["lost"],
        "expected_deliveries": totals["expected_deliveries"],
        "latency_p50_ms": outcome.results["latency_ms"]["p50"],
        "latency_p99_ms": outcome.results["latency_ms"]["p99"],
        "generator_saturated": outcome.results["generator"]["saturated"],
        "exit_code": outcome.exit_code,
    }


def run(rounds: int, quick: bool, output: Output, *, only: tuple[str, ...] = ()) -> dict[str, Any]:
    seconds = 4.0 if quick else 12.0
    chosen = [layout for layout in layouts(seconds) if not only or layout.name in only]
    if not chosen:
        known = ", ".join(repr(layout.name) for layout in layouts(seconds))
        raise BenchError(f"no layout named {', '.join(only)}: use one of {known}")
    rows: list[dict[str, Any]] = []
    for layout in chosen:
        for r, name in alternation(SERVERS, rounds):
            with server(name) as target:  # a fresh server per run: no state carried over
                row = measure_once(layout, target)
            row["round"] = r
            rows.append(row)
            output.say(
                f"  fanout {layout.name:<17} round {r + 1} {name:<9} "
                f"{fmt(row['deliveries_per_server_cpu_s'])} deliveries/server-CPU-s "
                f"({fmt(row['server_us_per_delivery'])} us), achieved "
                f"{fmt(row['achieved_deliveries_per_s'])}/s, lost {row['lost']}"
            )
    summaries = []
    for layout in chosen:
        these = [r for r in rows if r["layout"] == layout.name]
        s = summarise(
            these,
            metric="deliveries_per_server_cpu_s",
            a="reference",
            b="node",
            target=TARGET_RATIO,
        )
        summaries.append(attrs.evolve(s, metric=layout.name))
    output.say(
        "\nfan-out: deliveries per server CPU-second (median of "
        f"{rounds} round(s)), target reference >= {TARGET_RATIO}x node\n"
        + table(
            ["layout", "reference", "node", "ratio", "target"],
            summary_rows(summaries, "deliveries/CPU-s"),
        )
    )
    payload = {
        "metric": "deliveries per server CPU-second (steady phase; higher is better)",
        "target": f"reference >= {TARGET_RATIO}x node",
        "rounds": rounds,
        "steady_seconds": seconds,
        "summary": [attrs.asdict(s) | {"met": s.met} for s in summaries],
        "runs": rows,
    }

    def chart(figure: Any) -> None:
        ax = figure.add_subplot(1, 1, 1)
        names = [s.metric for s in summaries]
        xs = range(len(names))
        ax.bar(
            [x - 0.2 for x in xs],
            [s.a_median or 0 for s in summaries],
            0.4,
            label="reference (loadtool serve)",
        )
        ax.bar(
            [x + 0.2 for x in xs],
            [s.b_median or 0 for s in summaries],
            0.4,
            label="seed Node ws server",
        )
        for x, s in zip(xs, summaries, strict=True):
            ax.text(
                x,
                max(s.a_median or 0, s.b_median or 0),
                f"{fmt(s.ratio)}x",
                ha="center",
                va="bottom",
            )
        ax.set_xticks(list(xs), names)
        ax.set_ylabel("deliveries per server CPU-second")
        ax.set_title(f"Server fan-out cost, median of {rounds} round(s) (higher is better)")
        ax.legend()

    output.save("fanout", payload, chart)
    return payload
