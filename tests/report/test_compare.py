"""The compare gate on crafted pairs: a real results file against an edited copy of itself."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loadtool.report.compare import Verdict, compare, format_table


def row(outcome: Any, name: str) -> Any:
    return next(r for r in outcome.rows if r.name == name)


def slower(results: dict[str, Any], stat: str, factor: float) -> dict[str, Any]:
    worse = copy.deepcopy(results)
    worse["latency_ms"][stat] = round(worse["latency_ms"][stat] * factor, 3)
    return worse


def test_a_run_against_itself_passes(jitter: dict[str, Any]) -> None:
    outcome = compare(jitter, copy.deepcopy(jitter), max_regression=0.10)
    assert outcome.passed
    assert outcome.notes == ()
    assert {r.verdict for r in outcome.rows} <= {Verdict.OK, Verdict.INFO}
    assert row(outcome, "latency.p99").change == 0.0


@pytest.mark.parametrize("stat", ["p50", "p90", "p95", "p99", "p999"])
def test_a_latency_percentile_past_the_limit_fails(jitter: dict[str, Any], stat: str) -> None:
    new = slower(jitter, stat, 1.2)
    failed = compare(jitter, new, max_regression=0.10)
    assert not failed.passed
    (regression,) = failed.regressions
    assert regression.name == f"latency.{stat}"
    assert regression.change == pytest.approx(0.2, abs=1e-3)
    assert "grew 20.0% (limit 10%)" in regression.why
    assert compare(jitter, new, max_regression=0.25).passed  # within a looser limit


def test_faster_is_an_improvement_not_a_failure(jitter: dict[str, Any]) -> None:
    outcome = compare(jitter, slower(jitter, "p99", 0.5), max_regression=0.10)
    assert outcome.passed
    assert row(outcome, "latency.p99").verdict is Verdict.IMPROVED


def test_max_and_mean_are_shown_but_not_gated(jitter: dict[str, Any]) -> None:
    new = slower(slower(jitter, "max", 3.0), "mean", 3.0)
    outcome = compare(jitter, new, max_regression=0.10)
    assert outcome.passed
    assert row(outcome, "latency.max").verdict is Verdict.INFO
    assert row(outcome, "latency.max").change == pytest.approx(2.0, abs=1e-3)


def test_a_throughput_drop_past_the_limit_fails(jitter: dict[str, Any]) -> None:
    new = copy.deepcopy(jitter)
    new["totals"]["delivered"] = int(jitter["totals"]["delivered"] * 0.8)
    outcome = compare(jitter, new, max_regression=0.10)
    (regression,) = outcome.regressions
    assert regression.name == "throughput.delivered"
    assert "dropped 20.0%" in regression.why
    more = copy.deepcopy(jitter)
    more["totals"]["delivered"] = int(jitter["totals"]["delivered"] * 1.5)
    assert row(compare(jitter, more, max_regression=0.1), "throughput.delivered").verdict is (
        Verdict.IMPROVED
    )


def test_throughput_counts_active_seconds_only(jitter: dict[str, Any]) -> None:
    """A longer drain (quiet seconds at the end) is not a throughput drop."""
    new = copy.deepcopy(jitter)
    quiet = copy.deepcopy(new["timeseries"][-1]) | {"sent": 0, "delivered": 0}
    for extra in range(3):
        new["timeseries"].append(quiet | {"t": quiet["t"] + 1 + extra})
    new["duration_s"] = jitter["duration_s"] + 3
    outcome = compare(jitter, new, max_regression=0.01)
    assert row(outcome, "throughput.delivered").change == 0.0
    assert outcome.passed


@pytest.mark.parametrize("counter", ["lost", "duplicates", "leaked"])
def test_loss_duplicates_or_leaks_appearing_fail(jitter: dict[str, Any], counter: str) -> None:
    assert jitter["totals"][counter] == 0
    new = copy.deepcopy(jitter)
    new["totals"][counter] = 1
    outcome = compare(jitter, new, max_regression=0.50)  # no limit excuses an appearance
    (regression,) = outcome.regressions
    assert regression.name == counter
    assert regression.why == f"{counter} appeared: 0 -> 1"


def test_a_growing_loss_rate_fails_a_steady_one_passes(jitter: dict[str, Any]) -> None:
    base = copy.deepcopy(jitter)
    base["totals"]["lost"] = 10
    same = copy.deepcopy(base)
    assert compare(base, same, max_regression=0.10).passed
    worse = copy.deepcopy(base)
    worse["totals"]["lost"] = 20
    (regression,) = compare(base, worse, max_regression=0.10).regressions
    assert regression.name == "lost"
    assert regression.why.startswith("lost.rate ")
    assert "(+100%, limit 10%)" in regression.why
    better = copy.deepcopy(base)
    better["totals"]["lost"] = 0
    assert row(compare(base, better, max_regression=0.1), "lost").verdict is Verdict.IMPROVED


def test_a_figure_that_disappears_fails(jitter: dict[str, Any]) -> None:
    new = copy.deepcopy(jitter)
    new["ack_latency_ms"]["count"] = 0  # nothing was acked: not measured
    (regression,) = compare(jitter, new, max_regression=0.10).regressions
    assert regression.name == "ack_latency.p99"
    assert "measured in BASE, not in NEW" in regression.why


def test_errors_and_reconnect_time_are_information(jitter: dict[str, Any]) -> None:
    new = copy.deepcopy(jitter)
    new["totals"]["errors"] = 7
    new["reconnect_ms"]["p95"] *= 3
    outcome = compare(jitter, new, max_regression=0.10)
    assert outcome.passed
    assert row(outcome, "errors").verdict is Verdict.INFO
    assert row(outcome, "reconnect.p95").verdict is Verdict.INFO


def test_suspect_comparisons_are_noted_not_failed(
    jitter: dict[str, Any], exponential: dict[str, Any]
) -> None:
    saturated = copy.deepcopy(jitter)
    saturated["generator"]["saturated"] = True
    outcome = compare(jitter, saturated, max_regression=0.10)
    assert outcome.passed
    assert outcome.notes == (
        "NEW's load generator was saturated: its latencies include the generator's own delay",
    )
    notes = compare(jitter, exponential, max_regression=10.0).notes
    assert any(n.startswith("different scenarios (storm-full-jitter ") for n in notes)


def test_the_limit_must_be_a_fraction(jitter: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="at least 0"):
        compare(jitter, jitter, max_regression=-0.1)


def test_table_and_json(jitter: dict[str, Any]) -> None:
    outcome = compare(jitter, slower(jitter, "p99", 2.0), max_regression=0.10)
    table = format_table(outcome, "BASE", "NEW")
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "BASE", "NEW", "change", "verdict"]
    p99 = next(line for line in lines if line.startswith("latency p99 "))
    assert p99.split()[-2:] == ["+100.0%", "REGRESSED"]
    assert lines[-1] == "FAILED: 1 regression(s) beyond 10%"
    doc = outcome.to_dict()
    assert doc["passed"] is False
    assert doc["regressions"] == ["latency.p99"]
    p99_row = next(r for r in doc["rows"] if r["name"] == "latency.p99")
    assert p99_row["base"] == jitter["latency_ms"]["p99"]
    assert p99_row["verdict"] == "REGRESSED"
