"""Pass/fail thresholds, k6-style: `<metric> <op> <value>`, e.g. `latency.p99 < 150ms`. Pure.

A run's exit code is 1 when any threshold fails. The grammar (docs/scenarios.md):

    threshold := metric op value
    metric    := one of KNOWN_METRICS
    op        := "<" | "<=" | ">" | ">=" | "==" | "!="
    value     := number                      (any metric; latency metrics: milliseconds)
               | number ("ms"|"s"|"m"|"h")   (latency metrics only; compared in ms)
               | number "%"                  (ratio metrics `*.rate` only; 0.1% = 0.001)

Latency metrics are compared in milliseconds, ratio metrics as fractions (0..1), counters
as plain counts. The caller builds the `metrics` mapping under the same names.
"""

from __future__ import annotations

import difflib
import enum
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import attrs

from loadtool.results.schema import METRIC_COUNTERS
from loadtool.units import parse_duration, parse_percent

LATENCY_FAMILIES: Final = ("latency", "ack_latency", "reconnect")  # milliseconds
LATENCY_STATS: Final = ("p50", "p90", "p95", "p99", "p999", "max", "mean")
COUNTERS: Final = METRIC_COUNTERS
# lost/expected_deliveries, duplicates/delivered, errors/(sent+connects),
# delivered/expected_deliveries: fractions, written as 0.001 or 0.1%.
RATIOS: Final = ("lost.rate", "duplicates.rate", "errors.rate", "delivery.rate")
LATENCY_METRICS: Final = tuple(f"{f}.{s}" for f in LATENCY_FAMILIES for s in LATENCY_STATS)
KNOWN_METRICS: Final = LATENCY_METRICS + COUNTERS + RATIOS

_THRESHOLD: Final = re.compile(r"\s*([A-Za-z0-9_.]+)\s*(<=|>=|==|!=|<|>)\s*([^\s<>=!].*?)\s*")
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_EXAMPLE: Final = "'latency.p99 < 150ms', 'lost == 0' or 'errors.rate < 0.1%'"


class ThresholdError(ValueError):
    """A threshold expression does not parse; str() is one readable message."""

    def __init__(self, text: str, message: str) -> None:
        super().__init__(f"{message} (in threshold {text!r})")
        self.text = text
        self.message = message


class Operator(enum.StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def compare(self, left: float, right: float) -> bool:
        return _COMPARE[self](left, right)


_COMPARE: Final[dict[Operator, Callable[[float, float], bool]]] = {
    Operator.LT: operator.lt,
    Operator.LE: operator.le,
    Operator.GT: operator.gt,
    Operator.GE: operator.ge,
    Operator.EQ: operator.eq,
    Operator.NE: operator.ne,
}


class MetricKind(enum.Enum):
    LATENCY = "latency"  # milliseconds
    COUNTER = "counter"  # a count
    RATIO = "ratio"  # a fraction 0..1


def metric_kind(metric: str) -> MetricKind:
    """The kind of a known metric.

    Raises:
        ThresholdError: for an unknown metric, with did-you-mean and the known names.
    """
    if metric in LATENCY_METRICS:
        return MetricKind.LATENCY
    if metric in COUNTERS:
        return MetricKind.COUNTER
    if metric in RATIOS:
        return MetricKind.RATIO
    close = difflib.get_close_matches(metric, KNOWN_METRICS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ThresholdError(
        metric,
        f"expected a metric name, found {metric!r}{hint} Known metrics: {', '.join(KNOWN_METRICS)}",
    )


@attrs.frozen(kw_only=True)
class Threshold:
    """One parsed threshold. `value` is in the metric's unit: ms, a count or a fraction."""

    expr: str
    metric: str
    op: Operator = attrs.field(converter=Operator)
    value: float

    def check(self, observed: float) -> bool:
        """Whether `observed` passes; NaN never passes."""
        return not math.isnan(observed) and self.op.compare(observed, self.value)


@attrs.frozen(kw_only=True)
class ThresholdResult:
    """How one threshold fared. `value` is the observed value, None when not measured."""

    expr: str
    value: float | None
    ok: bool

    def as_dict(self) -> dict[str, str | float | bool | None]:
        """The results.json form: {expr, value, ok}."""
        return {"expr": self.expr, "value": self.value, "ok": self.ok}


def parse_threshold(text: str) -> Threshold:
    """Parse `<metric> <op> <value>`.

    Raises:
        ThresholdError: saying what was wrong; an unknown metric lists the known ones and
            suggests the closest.
    """
    match = _THRESHOLD.fullmatch(text)
    if match is None:
        raise ThresholdError(text, _shape_problem(text))
    metric, op, raw = match.groups()
    try:
        kind = metric_kind(metric)
    except ThresholdError as err:
        raise ThresholdError(text, err.message) from None
    value = _value(metric, kind, raw, text)
    return Threshold(expr=text.strip(), metric=metric, op=Operator(op), value=value)


def evaluate(
    thresholds: Iterable[Threshold], metrics: Mapping[str, float]
) -> list[ThresholdResult]:
    """Check each threshold against `metrics` (keyed by metric name, in the metric's unit).

    A metric missing from `metrics`, or NaN, fails its threshold with value None: a
    threshold on something that was not measured cannot be said to pass.
    """
    results = []
    for threshold in thresholds:
        observed = metrics.get(threshold.metric)
        if observed is None or math.isnan(observed):
            results.append(ThresholdResult(expr=threshold.expr, value=None, ok=False))
        else:
            results.append(
                ThresholdResult(
                    expr=threshold.expr, value=float(observed), ok=threshold.check(observed)
                )
            )
    return results


def _shape_problem(text: str) -> str:
    """Why `text` is not `<metric> <op> <value>`, as precisely as we can tell."""
    if not text.strip():
        return f"expected '<metric> <op> <value>' such as {_EXAMPLE}, found an empty threshold"
    if re.search(r"<>|=<|=>|=!|[<>=!]{3}", text):
        return "expected a comparison operator (<, <=, >, >=, ==, !=), found an unknown one"
    if re.search(r"(?<![<>=!])=(?!=)", text):
        return "expected a comparison operator (<, <=, >, >=, ==, !=), found '='; use '=='"
    if not re.search(r"<|>|==|!=", text):
        return f"expected '<metric> <op> <value>' such as {_EXAMPLE}, found no operator"
    return f"expected '<metric> <op> <value>' such as {_EXAMPLE}, found {text.strip()!r}"


def _value(metric: str, kind: MetricKind, raw: str, text: str) -> float:
    if _NUMBER.fullmatch(raw):
        return float(raw)
    if kind is MetricKind.LATENCY:
        try:
            return parse_duration(raw) * 1000.0
        except ValueError:
            pass
        raise ThresholdError(
            text, f"expected milliseconds or a duration such as 150ms or 2s, found {raw!r}"
        )
    if kind is MetricKind.RATIO:
        try:
            return parse_percent(raw)
        except ValueError:
            pass
        raise ThresholdError(
            text, f"expected a fraction or a percentage such as 0.001 or 0.1%, found {raw!r}"
        )
    ratio = f"{metric}.rate"
    hint = f"; for a percentage use {ratio!r}" if raw.endswith("%") and ratio in RATIOS else ""
    raise ThresholdError(text, f"expected a plain count such as 0 or 100, found {raw!r}{hint}")


def parse_slo(text: str) -> tuple[Threshold, ...]:
    """A service-level objective: thresholds joined by commas, all of which must hold,
    e.g. `latency.p99<100ms,lost==0` (`loadtool capacity --slo`, docs/capacity.md).

    Raises:
        ThresholdError: naming the bad term by its position and text; an empty SLO or an
            empty term (a stray comma) is refused too.
    """
    terms = text.split(",")
    if not text.strip():
        raise ThresholdError(
            text, f"expected thresholds joined by commas such as {_SLO_EXAMPLE}, found nothing"
        )
    parsed = []
    for number, term in enumerate(terms, start=1):
        if not term.strip():
            raise ThresholdError(
                text,
                f"SLO term {number} of {len(terms)} is empty: expected thresholds joined by "
                f"commas such as {_SLO_EXAMPLE}",
            )
        try:
            parsed.append(parse_threshold(term))
        except ThresholdError as err:
            raise ThresholdError(
                text, f"SLO term {number} {term.strip()!r}: {err.message}"
            ) from None
    return tuple(parsed)


_SLO_EXAMPLE: Final = "'latency.p99<100ms,lost==0'"
