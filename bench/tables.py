"""`python -m bench tables`: the Markdown tables of bench/README.md from the saved JSON.

Reads the newest `<date>-<name>.json` of each bench in the results folder, so the figures
in the README are the ones in the committed files, not copied by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .runner import fmt


def _latest(folder: Path, name: str) -> dict[str, Any] | None:
    paths = sorted(folder.glob(f"*-{name}.json"))
    return json.loads(paths[-1].read_text()) if paths else None


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def fanout(doc: dict[str, Any]) -> str:
    lines = [
        "| layout | reference | seed Node | ratio (target >= 1.2x) | verdict |",
        "|---|---|---|---|---|",
    ]
    for s in doc["summary"]:
        lines.append(
            f"| {s['metric']} | {fmt(s['a_median'])} | {fmt(s['b_median'])} | "
            f"{fmt(s['ratio'])}x | {_verdict(s['met'])} |"
        )
    lines.append("")
    lines.append("Per run (deliveries per server CPU-second; achieved deliveries/s in the window):")
    lines.append("")
    lines.append("| layout | server | round | deliveries/CPU-s | us/delivery | achieved/s | lost |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in doc["runs"]:
        lines.append(
            f"| {r['layout']} | {r['variant']} | {r['round'] + 1} | "
            f"{fmt(r['deliveries_per_server_cpu_s'])} | {fmt(r['server_us_per_delivery'])} | "
            f"{fmt(r['achieved_deliveries_per_s'])} | {r['lost']} |"
        )
    return "\n".join(lines)


def generator(doc: dict[str, Any]) -> str:
    m = doc["medians"]
    lt = m["loadtool"]["us_per_delivery"]
    lines = [
        "| tool | us CPU/delivery (steady) | whole run | vs loadtool | e2e p50 / p99 ms "
        "| send rate kept | fan-out latency by itself |",
        "|---|---|---|---|---|---|---|",
    ]
    for tool, row in m.items():
        rel = row["us_per_delivery"] / lt if lt and row["us_per_delivery"] else None
        lines.append(
            f"| {tool} | {fmt(row['us_per_delivery'])} | {fmt(row['whole_run_us_per_delivery'])} "
            f"| {fmt(rel)}x | {fmt(row['latency_p50_ms'])} / {fmt(row['latency_p99_ms'])} "
            f"| {fmt(row['send_rate_kept'])} | {doc['fanout_latency'][tool].split(':')[0]} |"
        )
    sweep = doc["saturation_sweep"]
    lines.append("")
    lines.append(
        f"loadtool target <= 10 us/delivery: {_verdict(doc['loadtool_target_met'])}. "
        f"Saturation sweep (1 msg/s per client, one room): one worker sustains "
        f"{fmt(sweep['sustained_deliveries_per_s'])} deliveries/s "
        f"({sweep['sustained_at_clients']} clients); "
        + (
            f"`saturated` first at {sweep['first_saturated_at_clients']} clients."
            if sweep["first_saturated_at_clients"] is not None
            else "`saturated` never turned true: the sweep's last step, so a lower bound."
        )
    )
    lines.append("")
    lines.append("| clients | deliveries/s | us/delivery | saturated |")
    lines.append("|---|---|---|---|")
    for s in sweep["steps"]:
        lines.append(
            f"| {s['clients']} | {fmt(s['steady_deliveries_per_s'])} | "
            f"{fmt(s['us_per_delivery'])} | {s['saturated']} |"
        )
    return "\n".join(lines)


def latency(doc: dict[str, Any]) -> str:
    return (
        "| p50 ms | p99 ms | target p50 < 1 ms |\n|---|---|---|\n"
        f"| {fmt(doc['median_p50_ms'], 3)} | {fmt(doc['median_p99_ms'], 3)} | "
        f"{_verdict(doc['target_met'])} |"
    )


def memory(doc: dict[str, Any]) -> str:
    m = doc["medians_kib_per_connection"]
    t = doc["targets_met"]
    return (
        "| what | KiB per idle connection | target <= 10 |\n|---|---|---|\n"
        f"| reference server (heartbeats) | {fmt(m['reference_server'])} | "
        f"{_verdict(t['reference_server'])} |\n"
        f"| seed Node server (no heartbeat) | {fmt(m['node_server'])} | (peer) |\n"
        f"| loadtool simulated client (heartbeats) | {fmt(m['loadtool_client'])} | "
        f"{_verdict(t['loadtool_client'])} |"
    )


def soak(doc: dict[str, Any]) -> str:
    lines = [
        "| series | mean | slope per hour | change over the span | flat (< 10 %) |",
        "|---|---|---|---|---|",
    ]
    for name, t in doc["trends"].items():
        lines.append(
            f"| {name} | {fmt(t.get('mean'))} | {fmt(t['slope_per_hour'])} | "
            f"{fmt(t.get('change_over_span'))} | {t['flat']} |"
        )
    tot = doc["totals"]
    lines.append("")
    lines.append(
        f"{doc['scenario']['seconds'] / 60:.0f} minutes: sent {tot['sent']:,}, delivered "
        f"{tot['delivered']:,}, lost {tot['lost']}, duplicates {tot['duplicates']}, "
        f"errors {tot['errors']}; latency p50 {doc['latency_ms']['p50']} ms, "
        f"p99 {doc['latency_ms']['p99']} ms over the whole run."
    )
    return "\n".join(lines)


RENDER = {
    "fanout": fanout,
    "generator": generator,
    "latency": latency,
    "memory": memory,
    "soak": soak,
}


def render(folder: Path) -> str:
    parts = []
    for name, fn in RENDER.items():
        doc = _latest(folder, name)
        if doc is None:
            parts.append(f"### {name}\n\n(no results in {folder})")
            continue
        mach = doc["machine"]
        parts.append(
            f"### {name}\n\n`{doc['measured_at']}`, commit {mach.get('commit', '?')}, "
            f"{mach['cpus']} CPUs ({mach['cpu_model']}), load average at the start "
            f"{mach['loadavg_at_start'][0]}, {doc.get('rounds', 1)} round(s)\n\n{fn(doc)}"
        )
    return "\n\n".join(parts)
