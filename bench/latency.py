"""Latency overhead: the p50 loadtool reports against a server that answers at once.

    .venv/bin/python -m bench latency [--rounds 3] [--quick]

A light run (10 clients in one room, 1 message/s each: 100 deliveries/s) against the seed
Node `ws` server, which relays each message as it reads it. Whatever latency the run
reports is then the generator's own overhead (schedule, send, parse, accounting) plus
Node's relay and two loopback hops: the target is a p50 under 1 ms. Each round is a fresh
server and a fresh run; the median of the rounds is reported.
"""

from __future__ import annotations

from typing import Any, Final

from .procs import Load, loadtool_run, node_server
from .runner import Output, fmt, median, table

TARGET_P50_MS: Final = 1.0


def run(rounds: int, quick: bool, output: Output) -> dict[str, Any]:
    load = Load(clients=10, rate=1.0, seconds=4.0 if quick else 15.0)
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        with node_server() as target:
            outcome = loadtool_run(load, target, {}, name="bench-latency")
        lat = outcome.results["latency_ms"]
        rows.append(
            {
                "round": r,
                "variant": "loadtool",
                "p50_ms": lat["p50"],
                "p90_ms": lat["p90"],
                "p99_ms": lat["p99"],
                "max_ms": lat["max"],
                "count": lat["count"],
                "lost": outcome.results["totals"]["lost"],
                "saturated": outcome.results["generator"]["saturated"],
            }
        )
        output.say(f"  latency round {r + 1}: p50 {lat['p50']} ms, p99 {lat['p99']} ms")
    p50 = median(r["p50_ms"] for r in rows)
    p99 = median(r["p99_ms"] for r in rows)
    met = p50 is not None and p50 < TARGET_P50_MS
    output.say(
        f"\nlatency overhead: {load.clients} clients x {load.rate:g}/s against the seed Node "
        f"server (median of {rounds} round(s))\n"
        + table(
            ["p50 ms", "p99 ms", "target"],
            [
                [
                    fmt(p50, 3),
                    fmt(p99, 3),
                    f"p50 < {TARGET_P50_MS:g} ms: " + ("met" if met else "NOT met"),
                ]
            ],
        )
    )
    payload = {
        "metric": "reported latency p50 of a light run against an instant server",
        "target": f"p50 < {TARGET_P50_MS} ms",
        "scenario": {
            "clients": load.clients,
            "rate_per_client": load.rate,
            "seconds": load.seconds,
            "server": "seed Node ws",
        },
        "rounds": rounds,
        "median_p50_ms": p50,
        "median_p99_ms": p99,
        "target_met": met,
        "runs": rows,
    }

    def chart(figure: Any) -> None:
        ax = figure.add_subplot(1, 1, 1)
        xs = [r["round"] + 1 for r in rows]
        for key in ("p50_ms", "p90_ms", "p99_ms"):
            ax.plot(xs, [r[key] for r in rows], marker="o", label=key.replace("_ms", ""))
        ax.axhline(TARGET_P50_MS, color="red", linestyle="--", label="p50 target")
        ax.set_xlabel("round")
        ax.set_ylabel("ms")
        ax.set_title("Reported latency against the seed Node server (light run)")
        ax.legend()

    output.save("latency", payload, chart)
    return payload
