"""The capacity search against a simulated server whose knee is known analytically.

The model: p99(L) = base / (1 - L / cap) for L < cap (an M/M/1-like queue), unbounded from
`cap` on. With the SLO `latency.p99 < T` the largest sustainable load is exactly
L* = cap * (1 - base / T): the search must bracket it within its resolution, within a
step count that follows from the growth factor and the resolution, and end for the
right reason when the generator saturates first, the budget runs out, the step limit is
reached, or a step fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from loadtool.capacity.search import (
    CapacitySearch,
    EndReason,
    Finished,
    Limit,
    RunStep,
    SearchConfig,
    StepOutcome,
    Verdict,
)
from loadtool.scenario import parse_slo

STEP_S = 20.0  # simulated seconds per step


@attrs.frozen
class Model:
    """A server with p99 = base / (1 - load / cap) ms, and a generator that saturates at
    `generator` (adding `lag_ms` of its own latency there)."""

    cap: float
    base_ms: float
    generator: float = math.inf
    lag_ms: float = 0.0
    lost_from: float = math.inf  # loads at or above this lose messages
    server_cpu: Callable[[float], float | None] = lambda _load: None

    def p99(self, load: float) -> float:
        if load >= self.cap:
            return 1e9
        return self.base_ms / (1 - load / self.cap)

    def knee(self, slo_ms: float) -> float:
        return self.cap * (1 - self.base_ms / slo_ms)

    def measure(self, load: float, wall_s: float = STEP_S) -> StepOutcome:
        saturated = load >= self.generator
        p99 = self.p99(load) + (self.lag_ms if saturated else 0.0)
        return StepOutcome(
            load=load,
            metrics={"latency.p99": p99, "lost": 1.0 if load >= self.lost_from else 0.0},
            saturated=saturated,
            server_cpu=self.server_cpu(load),
            wall_s=wall_s,
        )


def config(**overrides: object) -> SearchConfig:
    values: dict[str, object] = {
        "slo": parse_slo("latency.p99<100ms,lost==0"),
        "start": 10.0,
        "factor": 2.0,
        "max_steps": 100,
        "resolution": 0.1,
        "budget_s": 1e9,
        "step_cost_s": STEP_S,
    }
    values.update(overrides)
    return SearchConfig(**values)  # type: ignore[arg-type]


def run(search: CapacitySearch, measure: Callable[[float], StepOutcome]) -> Finished:
    """Drive the search as the real driver does, with simulated time."""
    elapsed = 0.0
    for _ in range(1000):
        action = search.next_action(elapsed)
        if isinstance(action, Finished):
            return action
        outcome = measure(action.load)
        elapsed += outcome.wall_s
        search.record(outcome)
    raise AssertionError("the search did not end")


def step_bound(start: float, knee: float, factor: float, resolution: float) -> int:
    """Steps needed: growth (or descent) to bracket the knee, then bisection from a
    bracket of relative width factor - 1 down to the resolution (+1 for rounding)."""
    bracket = math.ceil(abs(math.log(knee / start, factor))) + 1
    bisect = math.ceil(math.log2(max(1.0, (factor - 1) / resolution))) + 1
    return bracket + bisect + 1


@given(
    cap=st.floats(20, 1e5),
    base=st.floats(0.5, 20),
    slo_over_base=st.floats(1.5, 50),
    start_fraction=st.floats(0.01, 3),
    factor=st.floats(1.5, 4),
    resolution=st.floats(0.02, 0.3),
    whole=st.booleans(),
)
def test_the_knee_is_bracketed_within_the_resolution(
    cap: float,
    base: float,
    slo_over_base: float,
    start_fraction: float,
    factor: float,
    resolution: float,
    whole: bool,
) -> None:
    slo_ms = base * slo_over_base
    model = Model(cap=cap, base_ms=base)
    knee = model.knee(slo_ms)
    assume(knee >= 5)
    start = max(1.0, round(knee * start_fraction)) if whole else knee * start_fraction
    assume(abs(start - knee) / knee > 1e-6)  # not exactly on the knee
    search = CapacitySearch(
        config(
            slo=parse_slo(f"latency.p99<{slo_ms}"),
            start=start,
            factor=factor,
            resolution=resolution,
            whole=whole,
        )
    )
    result = run(search, model.measure)
    assert result.reason is EndReason.FOUND
    assert not result.lower_bound
    assert result.sustainable is not None
    assert result.upper is not None
    fuzz = 1 + 1e-9  # a load on the knee itself may round either way
    assert result.sustainable < knee * fuzz
    assert knee < result.upper * fuzz
    gap = result.upper - result.sustainable
    assert gap / result.sustainable <= resolution or (whole and gap <= 1)
    assert abs(knee - result.sustainable) <= max(resolution * result.sustainable, 1)
    assert len(result.steps) <= step_bound(start, knee, factor, resolution)
    assert result.limited_by is Limit.LATENCY


def test_a_worked_example() -> None:
    """cap 1000, base 10 ms, SLO p99 < 100 ms: L* = 900; from 100 doubling: 100, 200,
    400, 800 held, 1600 broke, then bisection 1200, 1000, 900 (broke: 900 is the knee,
    where p99 is exactly 100 ms, not below), 850 held, 875, 887 held, ..."""
    search = CapacitySearch(config(start=100.0, whole=True, resolution=0.05))
    result = run(search, Model(cap=1000, base_ms=10).measure)
    loads = [step.load for step in result.steps]
    assert loads[:5] == [100, 200, 400, 800, 1600]
    assert [s.stage for s in result.steps[:6]] == ["grow"] * 5 + ["bisect"]
    assert result.sustainable is not None
    assert 855 <= result.sustainable < 900
    assert result.upper is not None
    assert result.upper >= 900
    verdicts = {step.load: step.verdict for step in result.steps}
    assert verdicts[800] is Verdict.HELD
    assert verdicts[1600] is Verdict.BROKEN


def test_a_start_above_the_knee_descends_first() -> None:
    search = CapacitySearch(config(start=5000.0, whole=True))
    result = run(search, Model(cap=1000, base_ms=10).measure)
    assert [s.stage for s in result.steps[:3]] == ["grow", "descend", "descend"]
    assert result.steps[0].verdict is Verdict.BROKEN
    assert result.reason is EndReason.FOUND
    assert result.sustainable is not None
    assert 810 <= result.sustainable < 900


def test_a_generator_saturating_first_gives_a_lower_bound() -> None:
    """The generator saturates at 300 (its own lag breaks the SLO there), far below the
    server's knee at 900: the answer is below 300, flagged as a lower bound."""
    model = Model(cap=1000, base_ms=10, generator=300, lag_ms=500)
    result = run(CapacitySearch(config(start=50.0, whole=True)), model.measure)
    assert result.reason is EndReason.GENERATOR_SATURATED
    assert result.lower_bound
    assert result.limited_by is Limit.GENERATOR
    assert result.sustainable is not None
    assert 270 <= result.sustainable < 300
    assert result.sustainable < model.knee(100)
    assert any(step.verdict is Verdict.UNMEASURABLE for step in result.steps)
    assert result.detail.endswith("the load generator saturated")


def test_a_saturated_step_that_still_held_stops_the_growth() -> None:
    """Saturated but within the SLO: the server coped, but a bigger load would measure
    the generator, so the search stops there with that load as the lower bound."""
    model = Model(cap=1000, base_ms=10, generator=150, lag_ms=0)
    result = run(CapacitySearch(config(start=50.0, whole=True)), model.measure)
    assert [step.load for step in result.steps] == [50, 100, 200]
    assert result.reason is EndReason.GENERATOR_SATURATED
    assert result.sustainable == 200
    assert result.lower_bound
    assert result.upper is None


def test_the_budget_ends_the_search_before_a_step_that_does_not_fit() -> None:
    search = CapacitySearch(config(budget_s=65.0, step_cost_s=STEP_S))
    result = run(search, Model(cap=1e6, base_ms=10).measure)
    assert len(result.steps) == 3  # at 0, 20 and 40 s; at 60 s only 5 s are left
    assert result.reason is EndReason.BUDGET
    assert result.lower_bound
    assert result.limited_by is Limit.NONE
    assert result.sustainable == 40.0
    assert result.upper is None


def test_a_step_longer_than_estimated_raises_the_estimate() -> None:
    search = CapacitySearch(config(budget_s=100.0, step_cost_s=10.0))
    model = Model(cap=1e6, base_ms=10)
    result = run(search, lambda load: model.measure(load, wall_s=30.0))
    # 0 s: run (estimate 10); 30 s: 70 left >= 30; 60 s: 40 left >= 30; 90 s: 10 < 30.
    assert len(result.steps) == 3
    assert result.reason is EndReason.BUDGET
    assert search.step_cost_s() == 30.0


def test_the_step_limit_ends_the_search() -> None:
    result = run(CapacitySearch(config(max_steps=3)), Model(cap=1e6, base_ms=10).measure)
    assert [step.load for step in result.steps] == [10, 20, 40]
    assert result.reason is EndReason.STEP_LIMIT
    assert result.lower_bound


def test_a_failed_step_ends_with_server_error() -> None:
    def measure(load: float) -> StepOutcome:
        if load >= 40:
            return StepOutcome(load=load, failure="the server exited with code 1")
        return Model(cap=1e6, base_ms=10).measure(load)

    result = run(CapacitySearch(config()), measure)
    assert result.reason is EndReason.SERVER_ERROR
    assert result.sustainable == 20.0
    assert result.lower_bound
    assert result.steps[-1].verdict is Verdict.FAILED
    assert "the server exited with code 1" in result.detail


def test_the_slo_never_holding_ends_without_an_answer() -> None:
    model = Model(cap=1000, base_ms=200)  # 200 ms at no load: p99 < 100 ms never holds
    result = run(CapacitySearch(config(start=8.0, whole=True)), model.measure)
    assert [step.load for step in result.steps] == [8, 4, 2, 1]
    assert result.reason is EndReason.SLO_NEVER_HELD
    assert result.sustainable is None
    assert not result.found
    assert not result.lower_bound


def test_the_limit_names_what_broke() -> None:
    loss = Model(cap=1e6, base_ms=10, lost_from=100)
    result = run(CapacitySearch(config(start=50.0, whole=True)), loss.measure)
    assert result.limited_by is Limit.LOSS
    assert result.sustainable is not None
    assert 90 <= result.sustainable < 100

    busy = Model(cap=1000, base_ms=10, server_cpu=lambda load: min(1.0, load / 900))
    result = run(CapacitySearch(config(start=100.0, whole=True)), busy.measure)
    assert result.limited_by is Limit.SERVER_CPU


def test_a_shortfall_breaks_the_step_as_connections() -> None:
    search = CapacitySearch(config(start=10.0))
    step = search.next_action(0.0)
    assert isinstance(step, RunStep)
    record = search.record(
        StepOutcome(load=10.0, metrics={"latency.p99": 5.0, "lost": 0.0}, shortfall="8 of 10")
    )
    assert record.verdict is Verdict.BROKEN
    assert record.limit is Limit.CONNECTIONS


def test_a_metric_that_was_not_measured_fails_the_slo() -> None:
    search = CapacitySearch(config(start=10.0))
    search.next_action(0.0)
    record = search.record(StepOutcome(load=10.0, metrics={"lost": 0.0}))
    assert record.verdict is Verdict.BROKEN
    assert record.failed_terms == ("latency.p99<100ms",)


def test_misuse_is_refused() -> None:
    search = CapacitySearch(config())
    with pytest.raises(RuntimeError, match="no step is pending"):
        search.record(StepOutcome(load=10.0))
    search.next_action(0.0)
    with pytest.raises(RuntimeError, match="still pending"):
        search.next_action(0.0)
    with pytest.raises(RuntimeError, match="ran 10"):
        search.record(StepOutcome(load=11.0))


def test_abandon_ends_with_the_reason_and_keeps_the_answer() -> None:
    search = CapacitySearch(config())
    model = Model(cap=1e6, base_ms=10)
    for _ in range(2):
        step = search.next_action(0.0)
        assert isinstance(step, RunStep)
        search.record(model.measure(step.load))
    search.next_action(0.0)
    result = search.abandon(EndReason.BUDGET)
    assert result.reason is EndReason.BUDGET
    assert result.sustainable == 20.0
    assert search.next_action(0.0) is result


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"factor": 1.0}, "factor must be above 1"),
        ({"resolution": 0.0}, "resolution must be between 0 and 1"),
        ({"slo": ()}, "at least one threshold"),
        ({"start": 0.0}, "start must be a finite number above 0"),
    ],
)
def test_bad_configs_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)
