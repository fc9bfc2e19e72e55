"""`loadtool compare`, sans-IO: two results documents in, the key figures side by side
with their change and a verdict out. A regression gate for CI (docs/reports.md "compare").

The gate fails when, from BASE to NEW:
- a delivery latency percentile (p50, p90, p95, p99, p99.9) or the ack latency p99 grows by
  more than the limit (`--max-regression`, a fraction: 0.10 = 10 %);
- a throughput (messages sent or deliveries received per active second) drops by more
  than the limit;
- loss, duplicates or leaks appear where there were none, or their rate grows by more
  than the limit.
Other figures (max, mean, reconnect time, errors, connects) are shown for information:
they are too noisy between two runs to gate on. A saturated generator or two different
scenarios do not fail the gate but are reported as notes, since they make the comparison
suspect.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from ..results.schema import results_metrics

Results = Mapping[str, Any]


class Better(enum.Enum):
    LOWER = "lower"
    HIGHER = "higher"


class Gate(enum.Enum):
    RELATIVE = "relative"  # fails when it worsens by more than the limit
    APPEARS = "appears"  # fails when it appears (0 -> >0) or its rate worsens past the limit
    INFO = "info"  # shown, never fails


class Verdict(enum.StrEnum):
    OK = "ok"
    IMPROVED = "improved"
    REGRESSED = "REGRESSED"
    INFO = "info"
    NOT_MEASURED = "not measured"


@attrs.frozen(kw_only=True)
class KeyFigure:
    name: str  # the metric name in results_metrics (or a derived name)
    label: str
    unit: str  # "ms", "/s", or "" (a count)
    better: Better
    gate: Gate
    value: Callable[[Results, Mapping[str, float]], float | None]
    rate_of: str | None = None  # APPEARS: the rate metric whose growth also fails


def _metric(name: str) -> Callable[[Results, Mapping[str, float]], float | None]:
    return lambda _results, metrics: metrics.get(name)


def _active_seconds(results: Results) -> int:
    """Seconds from the first to the last second with sends (the drain does not count)."""
    sending = [int(row["t"]) for row in results["timeseries"] if row["sent"]]
    return sending[-1] - sending[0] + 1 if sending else 0


def _per_active_second(key: str) -> Callable[[Results, Mapping[str, float]], float | None]:
    def get(results: Results, _metrics: Mapping[str, float]) -> float | None:
        seconds = _active_seconds(results)
        return results["totals"][key] / seconds if seconds else None

    return get


def _latency(name: str, label: str, gate: Gate) -> KeyFigure:
    return KeyFigure(
        name=name, label=label, unit="ms", better=Better.LOWER, gate=gate, value=_metric(name)
    )


def _count(name: str, label: str, gate: Gate, rate_of: str | None = None) -> KeyFigure:
    return KeyFigure(
        name=name,
        label=label,
        unit="",
        better=Better.LOWER,
        gate=gate,
        value=_metric(name),
        rate_of=rate_of,
    )


KEY_FIGURES: Final = (
    _latency("latency.p50", "latency p50", Gate.RELATIVE),
    _latency("latency.p90", "latency p90", Gate.RELATIVE),
    _latency("latency.p95", "latency p95", Gate.RELATIVE),
    _latency("latency.p99", "latency p99", Gate.RELATIVE),
    _latency("latency.p999", "latency p99.9", Gate.RELATIVE),
    _latency("latency.max", "latency max", Gate.INFO),
    _latency("latency.mean", "latency mean", Gate.INFO),
    _latency("ack_latency.p99", "ack latency p99", Gate.RELATIVE),
    KeyFigure(
        name="throughput.sent",
        label="sent per active second",
        unit="/s",
        better=Better.HIGHER,
        gate=Gate.RELATIVE,
        value=_per_active_second("sent"),
    ),
    KeyFigure(
        name="throughput.delivered",
        label="deliveries per active second",
        unit="/s",
        better=Better.HIGHER,
        gate=Gate.RELATIVE,
        value=_per_active_second("delivered"),
    ),
    _count("lost", "lost", Gate.APPEARS, rate_of="lost.rate"),
    _count("duplicates", "duplicates", Gate.APPEARS, rate_of="duplicates.rate"),
    _count("leaked", "leaked", Gate.APPEARS),
    _count("out_of_order", "out of order", Gate.INFO),
    _count("errors", "errors", Gate.INFO),
    _count("reconnects", "reconnects", Gate.INFO),
    _latency("reconnect.p95", "reconnect time p95", Gate.INFO),
)


@attrs.frozen(kw_only=True)
class Row:
    name: str
    label: str
    unit: str
    base: float | None
    new: float | None
    change: float | None  # (new - base) / base; None when base is 0 or either is missing
    verdict: Verdict
    gated: bool
    why: str = ""  # for REGRESSED: what crossed which line

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self) | {"verdict": self.verdict.value}


@attrs.frozen(kw_only=True)
class Comparison:
    rows: tuple[Row, ...]
    max_regression: float
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.verdict is Verdict.REGRESSED)

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "max_regression": self.max_regression,
            "regressions": [row.name for row in self.regressions],
            "notes": list(self.notes),
            "rows": [row.to_dict() for row in self.rows],
        }


def _change(base: float, new: float) -> float | None:
    return (new - base) / base if base else None


def _worse_by(figure: KeyFigure, change: float) -> float:
    """How much worse NEW is than BASE as a positive fraction (negative: better)."""
    return change if figure.better is Better.LOWER else -change


def _row(
    figure: KeyFigure,
    base: float | None,
    new: float | None,
    base_metrics: Mapping[str, float],
    new_metrics: Mapping[str, float],
    limit: float,
) -> Row:
    def make(verdict: Verdict, change: float | None = None, why: str = "") -> Row:
        return Row(
            name=figure.name,
            label=figure.label,
            unit=figure.unit,
            base=base,
            new=new,
            change=change,
            verdict=verdict,
            gated=figure.gate is not Gate.INFO,
            why=why,
        )

    if base is not None and new is None and figure.gate is not Gate.INFO:
        return make(Verdict.REGRESSED, None, f"{figure.label} was measured in BASE, not in NEW")
    if base is None or new is None:
        return make(Verdict.NOT_MEASURED)
    change = _change(base, new)
    if figure.gate is Gate.INFO:
        return make(Verdict.INFO, change)
    if figure.gate is Gate.APPEARS:
        if base == 0 and new > 0:
            return make(Verdict.REGRESSED, None, f"{figure.label} appeared: 0 -> {new:g}")
        if figure.rate_of is not None and base > 0:
            old_rate, new_rate = base_metrics[figure.rate_of], new_metrics[figure.rate_of]
            rate_change = _change(old_rate, new_rate)
            if rate_change is not None and rate_change > limit:
                return make(
                    Verdict.REGRESSED,
                    change,
                    f"{figure.rate_of} {old_rate:.3g} -> {new_rate:.3g} "
                    f"(+{rate_change:.0%}, limit {limit:.0%})",
                )
        if new < base:
            return make(Verdict.IMPROVED, change)
        return make(Verdict.OK, change)
    if change is None:  # a zero baseline: no relative change to judge
        return make(Verdict.OK if new == base else Verdict.INFO, None)
    worse = _worse_by(figure, change)
    if worse > limit:
        direction = "grew" if figure.better is Better.LOWER else "dropped"
        return make(
            Verdict.REGRESSED,
            change,
            f"{figure.label} {direction} {abs(change):.1%} (limit {limit:.0%})",
        )
    if worse < -limit:
        return make(Verdict.IMPROVED, change)
    return make(Verdict.OK, change)


def _notes(base: Results, new: Results) -> list[str]:
    notes: list[str] = []
    for name, results in (("BASE", base), ("NEW", new)):
        if results["generator"]["saturated"]:
            notes.append(
                f"{name}'s load generator was saturated: its latencies include the "
                "generator's own delay"
            )
    b, n = base["scenario"], new["scenario"]
    if (b["name"], b["sha256"]) != (n["name"], n["sha256"]):
        notes.append(
            f"different scenarios ({b['name']} {str(b['sha256'])[:8]} vs "
            f"{n['name']} {str(n['sha256'])[:8]}): the figures may not be comparable"
        )
    return notes


def compare(base: Results, new: Results, *, max_regression: float) -> Comparison:
    """Compare NEW against BASE (both validated results documents).

    Raises:
        ValueError: `max_regression` is negative or not finite.
    """
    if not 0 <= max_regression < float("inf"):
        raise ValueError(f"max_regression must be a fraction of at least 0, got {max_regression}")
    base_metrics, new_metrics = results_metrics(base), results_metrics(new)
    rows = tuple(
        _row(
            figure,
            figure.value(base, base_metrics),
            figure.value(new, new_metrics),
            base_metrics,
            new_metrics,
            max_regression,
        )
        for figure in KEY_FIGURES
    )
    return Comparison(rows=rows, max_regression=max_regression, notes=tuple(_notes(base, new)))


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:,.1f} ms"
    if unit == "/s":
        return f"{value:,.1f}/s"
    return f"{value:,.0f}"


def format_table(comparison: Comparison, base_name: str, new_name: str) -> str:
    """The comparison as a console table, then the regressions and notes, then the verdict."""
    header = ("figure", base_name, new_name, "change", "verdict")
    lines: list[Sequence[str]] = [header]
    for row in comparison.rows:
        change = "-" if row.change is None else f"{row.change:+.1%}"
        lines.append(
            (
                row.label,
                _shown(row.base, row.unit),
                _shown(row.new, row.unit),
                change,
                row.verdict.value,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [
            line[i].ljust(widths[i]) if i in (0, 4) else line[i].rjust(widths[i])
            for i in range(len(header))
        ]
        out.append("  ".join(cells).rstrip())
    for row in comparison.regressions:
        out.append(f"REGRESSION: {row.why}")
    for note in comparison.notes:
        out.append(f"note: {note}")
    limit = f"{comparison.max_regression:.0%}"
    if comparison.passed:
        out.append(f"PASSED: no regression beyond {limit}")
    else:
        out.append(f"FAILED: {len(comparison.regressions)} regression(s) beyond {limit}")
    return "\n".join(out)
