"""Threshold grammar: `<metric> <op> <value>`, units, percentages, evaluation."""

from __future__ import annotations

import math

import pytest

from loadtool.scenario import (
    KNOWN_METRICS,
    MetricKind,
    Operator,
    Threshold,
    ThresholdError,
    ThresholdResult,
    evaluate,
    metric_kind,
    parse_slo,
    parse_threshold,
)


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("latency.p99 < 150ms", "latency.p99", Operator.LT, 150.0),
        ("latency.p99<150ms", "latency.p99", Operator.LT, 150.0),
        ("latency.p50 <= 2s", "latency.p50", Operator.LE, 2000.0),
        ("latency.max < 1.5s", "latency.max", Operator.LT, 1500.0),
        ("latency.mean < 1m", "latency.mean", Operator.LT, 60_000.0),
        ("latency.p999 < 250", "latency.p999", Operator.LT, 250.0),  # bare number: ms
        ("ack_latency.p95 < 300ms", "ack_latency.p95", Operator.LT, 300.0),
        ("reconnect.p95 < 5s", "reconnect.p95", Operator.LT, 5000.0),
        ("lost == 0", "lost", Operator.EQ, 0.0),
        ("duplicates != 3", "duplicates", Operator.NE, 3.0),
        ("delivered >= 1000", "delivered", Operator.GE, 1000.0),
        ("connects > 10", "connects", Operator.GT, 10.0),
        ("errors.rate < 0.1%", "errors.rate", Operator.LT, 0.001),
        ("lost.rate <= 0.001", "lost.rate", Operator.LE, 0.001),
        ("delivery.rate >= 99.9%", "delivery.rate", Operator.GE, 0.999),
        ("  duplicates.rate == 0  ", "duplicates.rate", Operator.EQ, 0.0),
    ],
)
def test_parse(text: str, metric: str, op: Operator, value: float) -> None:
    threshold = parse_threshold(text)
    assert threshold.metric == metric
    assert threshold.op is op
    assert threshold.value == pytest.approx(value)
    assert threshold.expr == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected '<metric> <op> <value>' such as"),
        ("lost", "found no operator"),
        ("lost = 0", "found '='; use '=='"),
        ("lost => 0", "found an unknown one"),
        ("lost <> 0", "found an unknown one"),
        ("lost ==", "found 'lost =='"),
        ("latency.p99 < fast", "expected milliseconds or a duration such as 150ms or 2s"),
        ("latency.p99 < 10%", "found '10%'"),
        ("errors.rate < 5ms", "expected a fraction or a percentage such as 0.001 or 0.1%"),
        ("lost < 5s", "expected a plain count such as 0 or 100, found '5s'"),
        ("lost < 1%", "for a percentage use 'lost.rate'"),
        ("lost < -1", "expected a plain count"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_threshold(text)
    assert message in str(info.value)
    assert info.value.text == text
    assert f"(in threshold {text!r})" in str(info.value)


def test_unknown_metric_suggests_the_closest_and_lists_all() -> None:
    with pytest.raises(ThresholdError) as info:
        parse_threshold("latncy.p99 < 150ms")
    message = info.value.message
    assert message.startswith(
        "expected a metric name, found 'latncy.p99'; did you mean 'latency.p99'?"
    )
    for name in KNOWN_METRICS:
        assert name in message


def test_unknown_metric_without_a_close_match() -> None:
    with pytest.raises(ThresholdError) as info:
        parse_threshold("throughput > 5")
    assert "did you mean" not in str(info.value)
    assert "Known metrics: latency.p50" in str(info.value)


def test_known_metrics() -> None:
    assert len(KNOWN_METRICS) == len(set(KNOWN_METRICS))
    for family in ("latency", "ack_latency", "reconnect"):
        for stat in ("p50", "p90", "p95", "p99", "p999", "max", "mean"):
            assert metric_kind(f"{family}.{stat}") is MetricKind.LATENCY
    assert metric_kind("lost") is MetricKind.COUNTER
    assert metric_kind("reconnects") is MetricKind.COUNTER
    assert metric_kind("delivery.rate") is MetricKind.RATIO


@pytest.mark.parametrize(
    ("op", "observed", "ok"),
    [
        ("<", 1, True),
        ("<", 2, False),
        ("<=", 2, True),
        ("<=", 3, False),
        (">", 3, True),
        (">", 2, False),
        (">=", 2, True),
        (">=", 1, False),
        ("==", 2, True),
        ("==", 1, False),
        ("!=", 1, True),
        ("!=", 2, False),
    ],
)
def test_operators(op: str, observed: float, ok: bool) -> None:
    assert parse_threshold(f"lost {op} 2").check(observed) is ok


def test_evaluate() -> None:
    thresholds = [
        parse_threshold("latency.p99 < 150ms"),
        parse_threshold("lost == 0"),
        parse_threshold("errors.rate < 0.1%"),
        parse_threshold("reconnect.p95 < 5s"),
    ]
    metrics = {"latency.p99": 149.9, "lost": 2.0, "errors.rate": 0.0005, "reconnect.p95": 5000}
    assert evaluate(thresholds, metrics) == [
        ThresholdResult(expr="latency.p99 < 150ms", value=149.9, ok=True),
        ThresholdResult(expr="lost == 0", value=2.0, ok=False),
        ThresholdResult(expr="errors.rate < 0.1%", value=0.0005, ok=True),
        ThresholdResult(expr="reconnect.p95 < 5s", value=5000.0, ok=False),
    ]


def test_evaluate_fails_what_was_not_measured() -> None:
    thresholds = [parse_threshold("latency.p99 < 150ms"), parse_threshold("lost != 1")]
    results = evaluate(thresholds, {"lost": math.nan})
    assert results == [
        ThresholdResult(expr="latency.p99 < 150ms", value=None, ok=False),
        ThresholdResult(expr="lost != 1", value=None, ok=False),
    ]


def test_result_as_dict() -> None:
    result = ThresholdResult(expr="lost == 0", value=0.0, ok=True)
    assert result.as_dict() == {"expr": "lost == 0", "value": 0.0, "ok": True}


def test_threshold_is_frozen_and_converts_the_operator() -> None:
    threshold = Threshold(expr="lost < 1", metric="lost", op="<", value=1.0)
    assert threshold.op is Operator.LT
    assert threshold == parse_threshold("lost < 1")


def test_parse_slo() -> None:
    terms = parse_slo("latency.p99<100ms,lost==0, errors.rate < 0.1%")
    assert [(t.metric, t.op, t.value) for t in terms] == [
        ("latency.p99", Operator.LT, 100.0),
        ("lost", Operator.EQ, 0.0),
        ("errors.rate", Operator.LT, 0.001),
    ]
    assert parse_slo("lost == 0") == (parse_threshold("lost == 0"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "expected thresholds joined by commas such as 'latency.p99<100ms,lost==0', found "
            "nothing",
        ),
        ("latency.p99<100ms,", "SLO term 2 of 2 is empty"),
        ("latency.p99<100ms,,lost==0", "SLO term 2 of 3 is empty"),
        (
            "latency.p99<100ms,lsot==0",
            "SLO term 2 'lsot==0': expected a metric name, found 'lsot'; did you mean 'lost'?",
        ),
        (
            "latency.p99<fast",
            "SLO term 1 'latency.p99<fast': expected milliseconds or a "
            "duration such as 150ms or 2s, found 'fast'",
        ),
        (
            "lost=0",
            "SLO term 1 'lost=0': expected a comparison operator (<, <=, >, >=, ==, "
            "!=), found '='; use '=='",
        ),
        (
            "lost==1%",
            "SLO term 1 'lost==1%': expected a plain count such as 0 or 100, found "
            "'1%'; for a percentage use 'lost.rate'",
        ),
    ],
)
def test_parse_slo_names_the_bad_term(text: str, message: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_slo(text)
    assert info.value.message.startswith(message)
    assert info.value.text == text
