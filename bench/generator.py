"""Generator cost: CPU per received-and-accounted delivery, loadtool vs Artillery vs Locust.

    .venv/bin/python -m bench generator [--rounds 3] [--quick]

The common target is the seed Node `ws` server (cheap, and the same for every tool). Each
tool drives the same scenario: C clients in its one broadcast room, each sending R
messages/s of ~128 characters of text, so C*C*R deliveries/s; tools run in alternation
(loadtool, artillery, locust, loadtool, ...), each against a fresh Node server.

Generator CPU (the tool's process tree: utime + stime from /proc) and the server's
deliveries (Node's write syscalls, one per delivered frame) are sampled every 0.25 s; the
cost is their ratio over the steady part of the run (the busy span of the delivery counter
with a fifth cut from each end), so start-up (Artillery's ~2 CPU-s) and the tail are left
out. The whole-run figure (all CPU / deliveries the tool counted) is reported too.

What each tool does per delivery:
- loadtool: parses the frame, records the latency from the *intended* send time into an
  HdrHistogram and runs loss/duplicate/order bookkeeping (the ledger).
- Artillery 2 (ws engine): discards received frames unless `capture`/`match` is used,
  which waits for one reply per send (request/response): a processor hook
  (bench/peers/hook.js) listens on the socket and emits a custom histogram per delivery.
- Locust: no WebSocket user in core; bench/peers/locustfile.py is websocket-client on gevent
  with a reader greenlet firing a request event per delivery.
Neither peer measures fan-out latency by itself, nor loss or duplicates: the hooks add
latency only (from the sender's actual send time, not an intended one).

Then the saturation point: loadtool against Node with more and more clients in the room
(1 message/s each) until `generator.saturated` turns true; the last step before is the
deliveries/s one worker sustains.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import yaml

from .procs import (
    CACHE,
    BenchError,
    Load,
    Samples,
    Server,
    cpu_seconds,
    loadtool_run,
    node_server,
    seed_node_modules,
    stop,
    watch,
    write_syscalls,
)
from .runner import Output, active_window, alternation, fmt, median, ratio, table

TOOLS: Final = ("loadtool", "artillery", "locust")
TARGET_US: Final = 10.0  # loadtool: at most 10 us of CPU per delivery
PEERS: Final = Path(__file__).resolve().parent / "peers"
BENCH_CACHE: Final = CACHE / "bench"
ARTILLERY_SPEC: Final = "artillery@2"
LOCUST_SPECS: Final = ("locust==2.47.0", "websocket-client>=1.8,<2")
TEXT: Final = 128
SWEEP: Final = (40, 60, 80, 100, 130, 160, 200, 250, 300)


# --- peers' installs (bench set-up only, never loadtool's dependencies) ----------------------


def artillery_bin() -> Path:
    exe = BENCH_CACHE / "node_modules" / ".bin" / "artillery"
    if not exe.exists():
        from .procs import _npm_install

        BENCH_CACHE.mkdir(parents=True, exist_ok=True)
        _npm_install(BENCH_CACHE, ARTILLERY_SPEC)
    return exe


def locust_bin() -> Path:
    venv = BENCH_CACHE / "locust-venv"
    exe = venv / "bin" / "locust"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *LOCUST_SPECS], check=True)
    return exe


# --- one run per tool --------------------------------------------------------------------


def _watch_tool(
    argv: list[str], target: Server, env: dict[str, str], cwd: Path, timeout_s: float
) -> tuple[Samples, subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        samples = watch(
            proc,
            {
                "generator_cpu": lambda: cpu_seconds(proc.pid, tree=True),
                "deliveries": lambda: write_syscalls(target.pid),
            },
            timeout_s=timeout_s,
        )
    finally:
        stop(proc)
    return samples, proc


def run_artillery(load: Load, target: Server) -> dict[str, Any]:
    exe = artillery_bin()
    sends = int(load.rate * load.seconds)
    script = {
        "config": {
            "target": target.url.rstrip("/"),
            "processor": "./hook.js",
            "phases": [{"duration": 1, "arrivalCount": load.clients}],
        },
        "scenarios": [
            {
                "engine": "ws",
                "flow": [
                    {"function": "attach"},
                    {"think": "2s"},  # every user connected before anyone sends
                    {
                        "loop": [
                            {"function": "stamp"},
                            {"send": "{{ payload }}"},
                            {"think": f"{round(1000 / load.rate)}ms"},  # a bare number is ms
                        ],
                        "count": sends,
                    },
                    {"think": "3s"},  # drain: stay connected for the others' last messages
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory(prefix="bench-artillery-") as tmp:
        cwd = Path(tmp)
        shutil.copy(PEERS / "hook.js", cwd / "hook.js")
        (cwd / "script.yml").write_text(yaml.safe_dump(script, sort_keys=False))
        env = {**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "true", "BENCH_TEXT": str(TEXT)}
        env["NODE_PATH"] = str(BENCH_CACHE / "node_modules")
        argv = [str(exe), "run", "--quiet", "--output", "report.json", "script.yml"]
        samples, proc = _watch_tool(argv, target, env, cwd, load.seconds + 180)
        report_path = cwd / "report.json"
        if not report_path.is_file():
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise BenchError(f"artillery exited {proc.returncode} without a report: {err[-2000:]}")
        report = json.loads(report_path.read_text())
    aggregate = report["aggregate"]
    latency = aggregate.get("summaries", {}).get("fanout.latency", {})
    counters = aggregate.get("counters", {})
    return _row(
        "artillery",
        load,
        samples,
        counted=int(latency.get("count", 0)),
        sent=int(counters.get("websocket.messages_sent", 0)),
        p50=latency.get("median"),
        p99=latency.get("p99"),
        saturated=None,
        errors=sum(v for k, v in counters.items() if k.startswith("errors.")),
    )


def run_locust(load: Load, target: Server) -> dict[str, Any]:
    exe = locust_bin()
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp:
        cwd = Path(tmp)
        out = cwd / "summary.json"
        env = {**os.environ, "BENCH_RATE": str(load.rate), "BENCH_TEXT": str(TEXT)}
        env["BENCH_OUT"] = str(out)
        run_s = load.seconds
        argv = [
            str(exe),
            "-f",
            str(PEERS / "locustfile.py"),
            "--headless",
            "-u",
            str(load.clients),
            "-r",
            str(load.clients),
            "-t",
            f"{run_s:.0f}s",
            "--host",
            target.url.rstrip("/"),
            "--only-summary",
            "--loglevel",
            "ERROR",
            "--stop-timeout",
            "3",
        ]
        samples, proc = _watch_tool(argv, target, env, cwd, run_s + 120)
        if not out.is_file():
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise BenchError(f"locust exited {proc.returncode} without a summary: {err[-2000:]}")
        summary = json.loads(out.read_text())
    return _row(
        "locust",
        load,
        samples,
        counted=int(summary["deliveries"]),
        sent=int(summary["sent"]),
        p50=summary["p50_ms"],
        p99=summary["p99_ms"],
        saturated=None,
        errors=0,
    )


def run_loadtool(load: Load, target: Server) -> dict[str, Any]:
    outcome = loadtool_run(
        load,
        target,
        {
            "generator_cpu": lambda pid: cpu_seconds(pid, tree=True),
            "deliveries": lambda _pid: write_syscalls(target.pid),
        },
        name="bench-generator",
    )
    r = outcome.results
    return _row(
        "loadtool",
        load,
        outcome.samples,
        counted=r["totals"]["delivered"],
        sent=r["totals"]["sent"],
        p50=r["latency_ms"]["p50"],
        p99=r["latency_ms"]["p99"],
        saturated=r["generator"]["saturated"],
        errors=r["totals"]["errors"],
        lost=r["totals"]["lost"],
    )


def _row(
    tool: str,
    load: Load,
    samples: Samples,
    *,
    counted: int,
    sent: int,
    p50: float | None,
    p99: float | None,
    saturated: bool | None,
    errors: int,
    lost: int | None = None,
) -> dict[str, Any]:
    cpu = samples.get("generator_cpu")
    done = samples.get("deliveries")
    window = active_window(done)
    us = rate = None
    if window is not None:
        i, j = window
        delivered = done[j][1] - done[i][1]
        if delivered > 0:
            us = (cpu[j][1] - cpu[i][1]) / delivered * 1e6
            rate = delivered / (done[j][0] - done[i][0])
    total_cpu = max((v for _, v in cpu), default=0.0)  # the whole process, start-up included
    offered_sends = load.clients * load.rate * load.seconds
    return {
        "variant": tool,
        "clients": load.clients,
        "rate_per_client": load.rate,
        "seconds": load.seconds,
        "us_per_delivery": round(us, 2) if us is not None else None,
        "steady_deliveries_per_s": round(rate) if rate else None,
        "whole_run_cpu_s": round(total_cpu, 2),
        "whole_run_us_per_delivery": round(total_cpu / counted * 1e6, 2) if counted else None,
        "deliveries_counted": counted,
        "server_deliveries": int(done[-1][1] - done[0][1]) if done else 0,
        "sent": sent,
        "send_rate_kept": round(sent / offered_sends, 3) if offered_sends else None,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "lost": lost,
        "errors": errors,
        "saturated": saturated,
    }


RUNNERS: Final = {"loadtool": run_loadtool, "artillery": run_artillery, "locust": run_locust}


def saturation_sweep(seconds: float, output: Output, steps: tuple[int, ...]) -> dict[str, Any]:
    """Step clients up (1 message/s each, one room on Node) until loadtool says saturated."""
    sweep: list[dict[str, Any]] = []
    for clients in steps:
        load = Load(clients=clients, rate=1.0, seconds=seconds)
        with node_server() as target:
            row = run_loadtool(load, target)
        sweep.append(row)
        output.say(
            f"  sweep {clients:>4} clients: {fmt(row['steady_deliveries_per_s'])} deliveries/s, "
            f"{fmt(row['us_per_delivery'])} us each, saturated={row['saturated']}"
        )
        if row["saturated"]:
            break
    ok = [r for r in sweep if not r["saturated"]]
    best = max(ok, key=lambda r: r["steady_deliveries_per_s"] or 0) if ok else None
    return {
        "steps": sweep,
        "sustained_deliveries_per_s": best["steady_deliveries_per_s"] if best else None,
        "sustained_at_clients": best["clients"] if best else None,
        "first_saturated_at_clients": sweep[-1]["clients"] if sweep[-1]["saturated"] else None,
    }


def run(rounds: int, quick: bool, output: Output) -> dict[str, Any]:
    seconds = 6.0 if quick else 20.0
    load = Load(clients=100, rate=1.0, seconds=seconds)
    seed_node_modules()
    tools = [t for t in TOOLS if t == "loadtool" or not quick or os.environ.get("BENCH_PEERS")]
    if not quick:
        artillery_bin()
        locust_bin()
    rows: list[dict[str, Any]] = []
    for r, tool in alternation(tools, rounds):
        with node_server() as target:
            row = RUNNERS[tool](load, target)
        row["round"] = r
        rows.append(row)
        output.say(
            f"  generator round {r + 1} {tool:<9} {fmt(row['us_per_delivery'])} us/delivery "
            f"(whole run {fmt(row['whole_run_us_per_delivery'])}), counted "
            f"{row['deliveries_counted']:,}, p50 {fmt(row['latency_p50_ms'])} ms"
        )
    medians = {
        t: {
            key: median(r[key] for r in rows if r["variant"] == t)
            for key in (
                "us_per_delivery",
                "whole_run_us_per_delivery",
                "steady_deliveries_per_s",
                "latency_p50_ms",
                "latency_p99_ms",
                "send_rate_kept",
            )
        }
        for t in tools
    }
    lt = medians["loadtool"]["us_per_delivery"]
    table_rows = []
    for t in tools:
        m = medians[t]
        table_rows.append(
            [
                t,
                fmt(m["us_per_delivery"]),
                fmt(m["whole_run_us_per_delivery"]),
                fmt(ratio(m["us_per_delivery"], lt)) + "x",
                fmt(m["latency_p50_ms"]),
                fmt(m["latency_p99_ms"]),
                fmt(m["send_rate_kept"]),
            ]
        )
    met = lt is not None and lt <= TARGET_US
    output.say(
        f"\ngenerator: CPU per delivery, {load.clients} clients x {load.rate:g}/s on the seed "
        f"Node server (median of {rounds} round(s))\n"
        + table(
            [
                "tool",
                "us/delivery",
                "whole run",
                "vs loadtool",
                "p50 ms",
                "p99 ms",
                "send rate kept",
            ],
            table_rows,
        )
        + f"\nloadtool target <= {TARGET_US} us/delivery: "
        + ("met" if met else f"NOT met ({fmt(lt)} us)")
    )
    sweep = saturation_sweep(4.0 if quick else 10.0, output, SWEEP[:3] if quick else SWEEP)
    first = sweep["first_saturated_at_clients"]
    output.say(
        "one worker sustains "
        f"{fmt(sweep['sustained_deliveries_per_s'])} deliveries/s before `saturated` "
        + (
            f"(first saturated at {first} clients)"
            if first is not None
            else "(never saturated: that is the sweep's last step, a lower bound)"
        )
    )
    payload = {
        "metric": "generator CPU microseconds per delivery (steady part; lower is better)",
        "target": f"loadtool <= {TARGET_US} us/delivery, and below the peers",
        "scenario": {
            "clients": load.clients,
            "rate_per_client": load.rate,
            "seconds": seconds,
            "text_chars": TEXT,
            "server": "seed Node ws",
        },
        "rounds": rounds,
        "medians": medians,
        "loadtool_target_met": met,
        "fanout_latency": {
            "loadtool": "yes: from the intended send time, per recipient, with loss/dups/order",
            "artillery": "no: only with a hand-written processor hook (bench/peers/hook.js)",
            "locust": "no: only with a hand-written user and reader greenlet "
            "(bench/peers/locustfile.py)",
        },
        "runs": rows,
        "saturation_sweep": sweep,
    }

    def chart(figure: Any) -> None:
        ax = figure.add_subplot(1, 2, 1)
        values = [medians[t]["us_per_delivery"] or 0 for t in tools]
        ax.bar(list(tools), values, color=["tab:blue", "tab:orange", "tab:green"][: len(tools)])
        ax.axhline(TARGET_US, color="red", linestyle="--", label=f"target {TARGET_US:g} us")
        ax.set_ylabel("generator CPU us per delivery")
        ax.set_title(f"{load.clients} clients x {load.rate:g}/s, one room (lower is better)")
        ax.legend()
        ax2 = figure.add_subplot(1, 2, 2)
        steps = sweep["steps"]
        ax2.plot(
            [s["clients"] for s in steps],
            [s["steady_deliveries_per_s"] or 0 for s in steps],
            marker="o",
        )
        for s in steps:
            if s["saturated"]:
                ax2.annotate("saturated", (s["clients"], s["steady_deliveries_per_s"] or 0))
        ax2.set_xlabel("clients in one room (1 msg/s each)")
        ax2.set_ylabel("deliveries/s (one loadtool worker)")
        ax2.set_title("Saturation sweep")

    output.save("generator", payload, chart)
    return payload
