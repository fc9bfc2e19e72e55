"""Soak: steady fan-out with heartbeats for minutes; RSS and latency must stay flat.

    .venv/bin/python -m bench soak [--minutes 10]

The reference server (its own process) and one `loadtool run` worker: 200 clients in 20
rooms of 10, 1 message/s each (2,000 deliveries/s), app-level heartbeats every 5 s and the
server's WebSocket pings. Server and generator RSS are sampled once a second from /proc;
latency p50/p99 per second come from the run's time series. Each series gets a
least-squares slope per hour over the steady phase after its first fifth (warm-up: caches,
histograms and the dedupe window filling; the server runs with a 1-minute dedupe window so
that it is full before the measured span). "Flat" means the fitted change over the
measured span is within 10 % of the series' mean; the slope is reported either way, with a
Theil-Sen slope (median of pairwise slopes) beside it, which bursts from other jobs on a
shared machine cannot tilt.
"""

from __future__ import annotations

from typing import Any, Final

from .procs import Load, loadtool_run, reference_server, rss_kb
from .runner import Output, fmt, slope_per_hour, table, theil_sen

FLAT_SHARE: Final = 0.10  # fitted change over the span / mean
DEDUPE_WINDOW_S: Final = 60.0


def _trend(points: list[tuple[float, float]]) -> dict[str, Any]:
    if len(points) < 3:
        return {"points": len(points), "slope_per_hour": None, "flat": None}
    xs = [t for t, _ in points]
    ys = [v for _, v in points]
    per_hour = slope_per_hour(xs, ys)
    robust = theil_sen(xs[:: _thin(len(xs))], ys[:: _thin(len(xs))]) * 3600
    mean = sum(ys) / len(ys)
    change = per_hour * (xs[-1] - xs[0]) / 3600
    share = abs(change) / mean if mean else None
    robust_change = robust * (xs[-1] - xs[0]) / 3600
    return {
        "points": len(points),
        "mean": round(mean, 3),
        "first": round(ys[0], 3),
        "last": round(ys[-1], 3),
        "slope_per_hour": round(per_hour, 3),
        "change_over_span": round(change, 3),
        "change_share_of_mean": round(share, 4) if share is not None else None,
        "flat": share is not None and share <= FLAT_SHARE,
        "theil_sen_slope_per_hour": round(robust, 3),
        "theil_sen_change_over_span": round(robust_change, 3),
        "flat_theil_sen": bool(mean) and abs(robust_change) / mean <= FLAT_SHARE,
    }


def _thin(n: int) -> int:
    """Keep at most ~400 points for the pairwise (quadratic) Theil-Sen slope."""
    return max(1, n // 400)


def run(rounds: int, quick: bool, output: Output, *, minutes: float = 10.0) -> dict[str, Any]:
    del rounds  # one long run: the time series is the repetition
    seconds = 30.0 if quick else minutes * 60
    load = Load(clients=200, rooms=20, rate=1.0, seconds=seconds, heartbeat="5s")
    output.say(f"  soak: {load.clients} clients, {load.rooms} rooms, {seconds:.0f} s ...")
    # A 1-minute dedupe window: the default (10 min) would grow the id table for the whole
    # soak by design; with 1 min it is full before the measured span (after the first
    # fifth), so growth seen there is not the window filling.
    with reference_server("--dedupe-window", f"{DEDUPE_WINDOW_S:.0f}s") as target:
        outcome = loadtool_run(
            load,
            target,
            {"server_rss": lambda _pid: rss_kb(target.pid), "client_rss": rss_kb},
            name="bench-soak",
            every_s=1.0,
            timeout_s=load.connect_s + seconds + 300,
        )
    start = outcome.start_unix
    t0 = load.connect_s + seconds / 5
    t1 = load.connect_s + seconds
    series: dict[str, list[tuple[float, float]]] = {}
    for name in ("server_rss", "client_rss"):
        series[f"{name}_kb"] = [
            (t - start, v) for t, v in outcome.samples.get(name) if t0 <= t - start <= t1 and v
        ]
    for key in ("p50", "p99"):
        series[f"latency_{key}_ms"] = [
            (row["t"] + 0.5, row["latency"][key])
            for row in outcome.results["timeseries"]
            if t0 <= row["t"] < t1 - 1 and row["delivered"]
        ]
    trends = {name: _trend(points) for name, points in series.items()}
    totals = outcome.results["totals"]
    output.say(
        f"\nsoak: {seconds / 60:.1f} min, slopes over the steady phase after its first fifth\n"
        + table(
            ["series", "mean", "slope/h", "change", "flat", "Theil-Sen slope/h", "flat"],
            [
                [
                    name,
                    fmt(t.get("mean")),
                    fmt(t["slope_per_hour"]),
                    fmt(t.get("change_over_span")),
                    str(t["flat"]),
                    fmt(t.get("theil_sen_slope_per_hour")),
                    str(t.get("flat_theil_sen")),
                ]
                for name, t in trends.items()
            ],
        )
        + f"\nsent {totals['sent']:,}, delivered {totals['delivered']:,}, lost {totals['lost']}, "
        f"duplicates {totals['duplicates']}, errors {totals['errors']}"
    )
    payload = {
        "metric": "least-squares slope per hour of RSS and latency under steady load",
        "target": f"flat: fitted change over the span within {FLAT_SHARE:.0%} of the mean",
        "scenario": {
            "clients": load.clients,
            "rooms": load.rooms,
            "rate_per_client": load.rate,
            "seconds": seconds,
            "heartbeat": load.heartbeat,
            "server": "reference",
            "server_dedupe_window_s": DEDUPE_WINDOW_S,
        },
        "trends": trends,
        "totals": {k: totals[k] for k in ("sent", "delivered", "lost", "duplicates", "errors")},
        "latency_ms": outcome.results["latency_ms"],
        "generator": {k: outcome.results["generator"][k] for k in ("cpu_s", "saturated")},
        "series": {name: [[round(t, 1), v] for t, v in points] for name, points in series.items()},
    }

    def chart(figure: Any) -> None:
        ax = figure.add_subplot(1, 2, 1)
        for name in ("server_rss_kb", "client_rss_kb"):
            pts = series[name]
            ax.plot([t / 60 for t, _ in pts], [v / 1024 for _, v in pts], label=name[:-3])
        ax.set_xlabel("minutes")
        ax.set_ylabel("RSS MiB")
        ax.set_title("RSS over the soak")
        ax.legend()
        ax2 = figure.add_subplot(1, 2, 2)
        for name in ("latency_p50_ms", "latency_p99_ms"):
            pts = series[name]
            ax2.plot([t / 60 for t, _ in pts], [v for _, v in pts], label=name[8:11])
        ax2.set_xlabel("minutes")
        ax2.set_ylabel("latency ms (per second)")
        ax2.set_yscale("log")
        ax2.set_title("Latency over the soak")
        ax2.legend()

    output.save("soak", payload, chart)
    return payload
