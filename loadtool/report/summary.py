"""The run report's tables as plain rows of text: what ran, the key figures, thresholds,
generator health and faults. Pure (results in, strings out), so the HTML page and any
other rendering show the same numbers, formatted the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from .runs import Run

Results = Mapping[str, Any]


def count(n: float) -> str:
    """12345 -> '12,345'."""
    return f"{int(n):,}"


def ms(value: float) -> str:
    """A latency in ms with 3 significant figures at least: 2.63 ms, 754 ms, 1,234 ms."""
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def rate(part: float, whole: float) -> str:
    """A share as a percentage with enough digits to tell 0 from "almost 0"."""
    if not whole:
        return "-"
    share = 100.0 * part / whole
    if share == 0:
        return "0%"
    return f"{share:.3g}%"


def _latency(section: str, stat: str) -> Callable[[Results], str]:
    def get(results: Results) -> str:
        summary = results[section]
        return ms(float(summary[stat])) if summary["count"] else "not measured"

    return get


def _total(key: str) -> Callable[[Results], str]:
    return lambda results: count(results["totals"][key])


def _with_rate(key: str, whole: str) -> Callable[[Results], str]:
    def get(results: Results) -> str:
        totals = results["totals"]
        return f"{count(totals[key])} ({rate(totals[key], totals[whole])})"

    return get


@attrs.frozen
class SummaryRow:
    label: str
    value: Callable[[Results], str]


SUMMARY_ROWS: Final = (
    SummaryRow("duration", lambda r: f"{float(r['duration_s']):.1f} s"),
    SummaryRow("clients", lambda r: count(r["ledger"]["clients"])),
    SummaryRow("messages sent", _total("sent")),
    SummaryRow(
        "delivered / expected",
        lambda r: (
            f"{count(r['totals']['delivered'])} / {count(r['totals']['expected_deliveries'])}"
        ),
    ),
    SummaryRow("lost", _with_rate("lost", "expected_deliveries")),
    SummaryRow("duplicates", _with_rate("duplicates", "delivered")),
    SummaryRow("out of order", _total("out_of_order")),
    SummaryRow("leaked to other rooms", _total("leaked")),
    SummaryRow("acks", _total("acks")),
    SummaryRow("latency p50", _latency("latency_ms", "p50")),
    SummaryRow("latency p90", _latency("latency_ms", "p90")),
    SummaryRow("latency p99", _latency("latency_ms", "p99")),
    SummaryRow("latency p99.9", _latency("latency_ms", "p999")),
    SummaryRow("latency max", _latency("latency_ms", "max")),
    SummaryRow("latency mean", _latency("latency_ms", "mean")),
    SummaryRow("ack latency p99", _latency("ack_latency_ms", "p99")),
    SummaryRow("connects", _total("connects")),
    SummaryRow("reconnects", _total("reconnects")),
    SummaryRow("reconnect time p50", _latency("reconnect_ms", "p50")),
    SummaryRow("reconnect time p95", _latency("reconnect_ms", "p95")),
    SummaryRow("errors", _total("errors")),
)


def summary_rows(runs: Sequence[Run]) -> list[list[str]]:
    """One row per key figure: its name, then its value in each run."""
    return [[row.label, *(row.value(run.results) for run in runs)] for row in SUMMARY_ROWS]


def _policy(results: Results) -> str:
    reconnect = results["scenario"].get("reconnect")
    if reconnect is None:
        return "not recorded"
    return f"{reconnect['policy']} (base {reconnect['base_s']:g} s, cap {reconnect['cap_s']:g} s)"


def run_rows(runs: Sequence[Run]) -> list[list[str]]:
    """What ran against what: one row per property, one column per run."""
    props: list[tuple[str, Callable[[Run], str]]] = [
        ("scenario", lambda run: str(run.results["scenario"]["name"])),
        ("scenario file", lambda run: str(run.results["scenario"]["file"] or "(built in code)")),
        ("scenario sha256", lambda run: str(run.results["scenario"]["sha256"])[:16]),
        ("seed", lambda run: str(run.results["scenario"]["seed"])),
        ("run id", lambda run: str(run.results["run_id"])),
        ("start (UTC)", lambda run: str(run.results["start"])),
        ("target", lambda run: ", ".join(run.results["target"]["urls"])),
        (
            "server",
            lambda run: (
                "embedded reference server"
                if run.results["target"]["embedded"]
                else "external server"
            ),
        ),
        ("dialect", lambda run: str(run.results["target"]["dialect"])),
        ("reconnect back-off", lambda run: _policy(run.results)),
        ("results file", lambda run: str(run.path) if run.path else "-"),
        ("written by", lambda run: "{name} {version}".format(**run.results["tool"])),
    ]
    return [[name, *(get(run) for run in runs)] for name, get in props]


def threshold_rows(runs: Sequence[Run]) -> tuple[list[list[str]], list[str]]:
    """(rows, css classes): run label (when several), threshold, observed value, verdict."""
    rows: list[list[str]] = []
    classes: list[str] = []
    for run in runs:
        for check in run.results["thresholds"]:
            value = check["value"]
            shown = "not measured" if value is None else f"{float(value):g}"
            verdict = "PASS" if check["ok"] else "FAIL"
            row = [str(check["expr"]), shown, verdict]
            rows.append([run.label, *row] if len(runs) > 1 else row)
            classes.append("pass" if check["ok"] else "fail")
    return rows, classes


def verdict_line(results: Results) -> str:
    """'PASSED: all 4 thresholds held' / 'FAILED: 1 of 4 thresholds failed'."""
    checks = results["thresholds"]
    failed = sum(1 for c in checks if not c["ok"])
    if results["passed"]:
        return f"PASSED: all {len(checks)} thresholds held" if checks else "PASSED (no thresholds)"
    if failed:
        return f"FAILED: {failed} of {len(checks)} thresholds failed"
    return "FAILED"


def saturation_text(results: Results) -> str | None:
    """The warning for a saturated generator (None when it kept up)."""
    gen = results["generator"]
    if not gen["saturated"]:
        return None
    reasons = "; ".join(str(r) for r in gen.get("saturation_reasons", ())) or "no reason recorded"
    return (
        f"The load generator was saturated ({reasons}): it could not keep its schedule, so "
        "latencies measure the generator as well as the server. Rerun with more --workers "
        "or fewer clients per worker before trusting them."
    )


def health_rows(runs: Sequence[Run]) -> list[list[str]]:
    """How the generator fared: one row per property, one column per run."""
    props: list[tuple[str, Callable[[Results], str]]] = [
        ("saturated", lambda r: "YES" if r["generator"]["saturated"] else "no"),
        (
            "why",
            lambda r: (
                "; ".join(str(x) for x in r["generator"].get("saturation_reasons", ())) or "-"
            ),
        ),
        ("worker processes", lambda r: count(r["generator"]["workers"])),
        ("CPU used", lambda r: f"{float(r['generator']['cpu_s']):.1f} s"),
        ("event-loop lag p99", lambda r: ms(float(r["generator"]["loop_lag_ms_p99"]))),
        ("clock", lambda r: str(r["generator"]["clock"]["source"])),
        ("clamped latencies (clock skew)", lambda r: count(r["latency_ms"]["clamped"])),
    ]
    return [[name, *(get(run.results) for run in runs)] for name, get in props]


def fault_rows(runs: Sequence[Run]) -> list[list[str]]:
    """Injected faults: (run label when several), time, kind, detail."""
    rows: list[list[str]] = []
    for run in runs:
        for fault in run.results["faults"]:
            row = [f"{float(fault['at_s']):.1f} s", str(fault["kind"]), str(fault["detail"])]
            rows.append([run.label, *row] if len(runs) > 1 else row)
    return rows
