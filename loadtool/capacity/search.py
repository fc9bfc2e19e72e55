"""The capacity search as a sans-IO state machine: it says which load to run next, it is
told what each step measured, and it ends with an answer and the reason. Pure.

Design (docs/capacity.md). The search keeps two bounds: `good`, the largest load that held
the SLO, and `bad`, the smallest load that did not. Loads are proposed as

    no bad step yet:     start, then good x factor, ...        (grow geometrically)
    no good step yet:    bad / factor, ...                     (descend: start was too much)
    both:                (good + bad) / 2 until (bad - good) / good <= resolution (bisect)

so the answer is bracketed: the SLO held at `good` and broke at `bad`, which are at most
`resolution` apart. Every step is classified (`Verdict`):

    HELD          the SLO held (also when the generator saturated: the server coped)
    BROKEN        the SLO broke and the generator kept up: a limit of the server
    UNMEASURABLE  the SLO broke while the generator was saturated: the generator's limit,
                  not necessarily the server's, so an answer bounded by it is a lower bound
    FAILED        the step could not run (the server died, refused everyone): stop

and the search ends (`EndReason`) when the bracket is narrow enough (FOUND), when the
generator saturated before the SLO broke (GENERATOR_SATURATED: a lower bound), when
even the smallest load broke it (SLO_NEVER_HELD), when the next step does not fit in the
remaining budget (BUDGET) or the step limit is reached (STEP_LIMIT), or when a step failed
(SERVER_ERROR). The driver passes the time spent so far; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from ..scenario.thresholds import Threshold, ThresholdResult, evaluate

SERVER_CPU_LIMIT: Final = 0.85  # share of one core: above it a broken SLO is the server's CPU


class Verdict(enum.StrEnum):
    HELD = "held"
    BROKEN = "broken"
    UNMEASURABLE = "unmeasurable"
    FAILED = "failed"


class EndReason(enum.StrEnum):
    FOUND = "found"
    GENERATOR_SATURATED = "generator_saturated"
    SLO_NEVER_HELD = "slo_never_held"
    BUDGET = "budget"
    STEP_LIMIT = "step_limit"
    SERVER_ERROR = "server_error"


class Limit(enum.StrEnum):
    """What stopped the load from growing (`limited_by`)."""

    SERVER_CPU = "server_cpu"  # the SLO broke with the server's core busy
    LATENCY = "latency"  # a latency term broke
    LOSS = "loss"  # lost / delivery terms broke
    ERRORS = "errors"  # error terms broke
    CONNECTIONS = "connections"  # the server did not hold the population
    CORRECTNESS = "correctness"  # duplicates, order or leaks broke
    GENERATOR = "generator"  # the load generator saturated first: a lower bound
    NONE = "none"  # no limit reached within the steps taken


_FAMILY_LIMITS: Final = {
    "latency": Limit.LATENCY,
    "ack_latency": Limit.LATENCY,
    "reconnect": Limit.LATENCY,
    "lost": Limit.LOSS,
    "delivery": Limit.LOSS,
    "delivered": Limit.LOSS,
    "received_expected": Limit.LOSS,
    "expected_deliveries": Limit.LOSS,
    "errors": Limit.ERRORS,
    "connects": Limit.ERRORS,
    "reconnects": Limit.ERRORS,
    "duplicates": Limit.CORRECTNESS,
    "out_of_order": Limit.CORRECTNESS,
    "leaked": Limit.CORRECTNESS,
}


def _terms(values: Iterable[Threshold]) -> tuple[Threshold, ...]:
    return tuple(values)


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attr.name} must be a finite number above 0, got {value!r}")


@attrs.frozen(kw_only=True)
class SearchConfig:
    """The search's bounds. Loads are in the varied dimension's unit."""

    slo: tuple[Threshold, ...] = attrs.field(converter=_terms)
    start: float = attrs.field(validator=_positive)
    factor: float = attrs.field()
    max_steps: int = attrs.field(validator=attrs.validators.ge(1))
    resolution: float = attrs.field()  # relative: stop when (bad - good) / good <= this
    budget_s: float = attrs.field(validator=_positive)  # seconds for the whole search
    step_cost_s: float = attrs.field(validator=_positive)  # seconds one step is expected to take
    whole: bool = False  # loads are whole numbers (clients)
    minimum: float = attrs.field(default=1.0, validator=_positive)  # smallest load to try

    @slo.validator
    def _check_slo(self, _attr: object, slo: tuple[Threshold, ...]) -> None:
        if not slo:
            raise ValueError("an SLO needs at least one threshold")

    @factor.validator
    def _check_factor(self, _attr: object, factor: float) -> None:
        if not (math.isfinite(factor) and factor > 1):
            raise ValueError(f"factor must be above 1, got {factor!r}")

    @resolution.validator
    def _check_resolution(self, _attr: object, resolution: float) -> None:
        if not 0 < resolution < 1:
            raise ValueError(f"resolution must be between 0 and 1, got {resolution!r}")


@attrs.frozen(kw_only=True)
class RunStep:
    """Run step `index` (1-based) at `load`; `stage` is grow, descend or bisect."""

    index: int
    load: float
    stage: str


@attrs.frozen(kw_only=True)
class StepOutcome:
    """What a step measured (its steady window, docs/capacity.md).

    `metrics` holds the threshold metrics (names as in docs/scenarios.md); `figures`
    anything else worth reporting (throughput, server CPU), copied to the step's record.
    `shortfall` says why the intended load was not applied (clients the server did not
    hold); `failure` why the step could not run at all. `wall_s` is what it took.
    """

    load: float
    metrics: Mapping[str, float] = attrs.field(factory=dict)
    saturated: bool = False
    saturation_reasons: tuple[str, ...] = ()
    server_cpu: float | None = None  # share of one core over the window; None: unknown
    shortfall: str | None = None
    failure: str | None = None
    wall_s: float = 0.0
    figures: Mapping[str, float | None] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class StepRecord:
    """One step as the search judged it."""

    index: int
    stage: str
    outcome: StepOutcome
    checks: tuple[ThresholdResult, ...]
    verdict: Verdict
    limit: Limit | None  # why it was not HELD; None when it was

    @property
    def load(self) -> float:
        return self.outcome.load

    @property
    def failed_terms(self) -> tuple[str, ...]:
        return tuple(check.expr for check in self.checks if not check.ok)


@attrs.frozen(kw_only=True)
class Finished:
    """How the search ended and what it found.

    `sustainable` is the largest load that held the SLO (None: none did). It is exact to
    `resolution` only when `reason` is FOUND; otherwise it is a lower bound (`lower_bound`,
    False when there is no answer at all).
    `upper` is the smallest load that broke it (None: none did).
    """

    reason: EndReason
    sustainable: float | None
    upper: float | None
    lower_bound: bool
    limited_by: Limit
    detail: str
    steps: tuple[StepRecord, ...]

    @property
    def found(self) -> bool:
        return self.sustainable is not None


Action = RunStep | Finished


def limit_of(outcome: StepOutcome, checks: tuple[ThresholdResult, ...]) -> Limit:
    """What the failed checks (or the shortfall) of a step that did not hold point at.

    Server CPU at or above SERVER_CPU_LIMIT of a core wins over the symptom; a shortfall
    (the population not held) is CONNECTIONS; otherwise the first failed term's family.
    """
    if outcome.saturated:
        return Limit.GENERATOR
    if outcome.server_cpu is not None and outcome.server_cpu >= SERVER_CPU_LIMIT:
        return Limit.SERVER_CPU
    if outcome.shortfall is not None:
        return Limit.CONNECTIONS
    for check in checks:
        if not check.ok:
            family = _metric_of(check.expr).split(".")[0]
            return _FAMILY_LIMITS.get(family, Limit.LATENCY)
    return Limit.NONE


def _metric_of(expr: str) -> str:
    for index, char in enumerate(expr):
        if char in "<>=!":
            return expr[:index].strip()
    return expr.strip()


@attrs.define
class CapacitySearch:
    """The state machine. Call `next_action(elapsed_s)`; for a RunStep, run it and call
    `record(outcome)`; repeat until a Finished comes back (and keeps coming back).

    `abandon(reason)` ends the search from outside (the budget's cancel scope fired during
    a step, whose outcome is then unknown).
    """

    config: SearchConfig
    _steps: list[StepRecord] = attrs.field(factory=list)
    _good: StepRecord | None = None
    _bad: StepRecord | None = None
    _pending: RunStep | None = None
    _finished: Finished | None = None

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        return tuple(self._steps)

    @property
    def finished(self) -> Finished | None:
        return self._finished

    def step_cost_s(self) -> float:
        """Seconds the next step is expected to take: the configured estimate, or the
        longest step so far when that was longer."""
        walls = [record.outcome.wall_s for record in self._steps]
        return max([self.config.step_cost_s, *walls])

    def next_action(self, elapsed_s: float) -> Action:
        """The next step to run, or how the search ended.

        Raises:
            RuntimeError: a step is still pending (`record` was not called for it).
        """
        if self._finished is not None:
            return self._finished
        if self._pending is not None:
            raise RuntimeError(f"step {self._pending.index} is still pending: record it first")
        proposal = self._propose()
        if isinstance(proposal, EndReason):
            return self._finish(proposal)
        load, stage = proposal
        if len(self._steps) >= self.config.max_steps:
            return self._finish(EndReason.STEP_LIMIT)
        if self.config.budget_s - elapsed_s < self.step_cost_s():
            return self._finish(EndReason.BUDGET)
        self._pending = RunStep(index=len(self._steps) + 1, load=load, stage=stage)
        return self._pending

    def record(self, outcome: StepOutcome) -> StepRecord:
        """Take in what the pending step measured; returns the step as judged.

        Raises:
            RuntimeError: no step is pending, or the outcome is for another load.
        """
        pending = self._pending
        if pending is None:
            raise RuntimeError("no step is pending")
        if not math.isclose(outcome.load, pending.load):
            raise RuntimeError(f"step {pending.index} ran {pending.load:g}, not {outcome.load:g}")
        self._pending = None
        checks = tuple(evaluate(self.config.slo, outcome.metrics))
        held = all(check.ok for check in checks) and outcome.shortfall is None
        if outcome.failure is not None:
            verdict = Verdict.FAILED
        elif held:
            verdict = Verdict.HELD
        elif outcome.saturated:
            verdict = Verdict.UNMEASURABLE
        else:
            verdict = Verdict.BROKEN
        limit = None
        if verdict is Verdict.FAILED:
            limit = Limit.ERRORS
        elif verdict is not Verdict.HELD:
            limit = limit_of(outcome, checks)
        record = StepRecord(
            index=pending.index,
            stage=pending.stage,
            outcome=outcome,
            checks=checks,
            verdict=verdict,
            limit=limit,
        )
        self._steps.append(record)
        if verdict is Verdict.FAILED:
            self._finish(EndReason.SERVER_ERROR)
        elif verdict is Verdict.HELD:
            self._good = record
            if outcome.saturated and self._bad is None:
                # Growing further would only measure the generator.
                self._finish(EndReason.GENERATOR_SATURATED)
        else:
            self._bad = record
        return record

    def abandon(self, reason: EndReason) -> Finished:
        """End the search now (a pending step's outcome is dropped)."""
        self._pending = None
        if self._finished is not None:
            return self._finished
        return self._finish(reason)

    # -- the proposal rule ---------------------------------------------------------------

    def _propose(self) -> tuple[float, str] | EndReason:
        config = self.config
        good, bad = self._good, self._bad
        if bad is None:
            if good is None:
                return self._round(config.start), "grow"
            return self._above(good.load * config.factor, good.load), "grow"
        if good is None:
            if bad.load <= config.minimum:
                return EndReason.SLO_NEVER_HELD
            return self._below(max(config.minimum, bad.load / config.factor), bad.load), "descend"
        if self._converged(good.load, bad.load):
            return EndReason.FOUND
        return self._between(good.load, bad.load), "bisect"

    def _converged(self, low: float, high: float) -> bool:
        if self.config.whole and high - low <= 1:
            return True
        return (high - low) / low <= self.config.resolution

    def _round(self, load: float) -> float:
        return float(max(round(load), 1)) if self.config.whole else load

    def _above(self, load: float, floor: float) -> float:
        """`load` as a step: whole numbers round up, and stay above `floor`."""
        return float(max(math.ceil(load), math.floor(floor) + 1)) if self.config.whole else load

    def _below(self, load: float, ceiling: float) -> float:
        if not self.config.whole:
            return load
        return float(min(max(math.floor(load), 1), math.ceil(ceiling) - 1))

    def _between(self, low: float, high: float) -> float:
        middle = (low + high) / 2
        return float(math.floor(middle)) if self.config.whole else middle

    # -- the end ---------------------------------------------------------------------------

    def _finish(self, reason: EndReason) -> Finished:
        good, bad = self._good, self._bad
        # Bracketed (or never held) because of the generator, not the server.
        bounded_by_generator = bad is not None and bad.verdict is Verdict.UNMEASURABLE
        if reason in (EndReason.FOUND, EndReason.SLO_NEVER_HELD) and bounded_by_generator:
            reason = EndReason.GENERATOR_SATURATED
        if reason is EndReason.GENERATOR_SATURATED:
            limited_by = Limit.GENERATOR
        elif bad is not None and bad.limit is not None:
            limited_by = bad.limit
        elif self._steps and self._steps[-1].verdict is Verdict.FAILED:
            limited_by = Limit.ERRORS
        else:
            limited_by = Limit.NONE
        self._finished = Finished(
            reason=reason,
            sustainable=None if good is None else good.load,
            upper=None if bad is None else bad.load,
            lower_bound=good is not None and reason is not EndReason.FOUND,
            limited_by=limited_by,
            detail=self._detail(reason),
            steps=tuple(self._steps),
        )
        return self._finished

    def _detail(self, reason: EndReason) -> str:
        good, bad = self._good, self._bad
        held = "no load held the SLO" if good is None else f"the SLO held at {good.load:g}"
        broke = ""
        if bad is not None:
            terms = ", ".join(bad.failed_terms) or bad.outcome.shortfall or "the step failed"
            broke = f" and broke at {bad.load:g} ({terms})"
        texts = {
            EndReason.FOUND: f"{held}{broke}, within {self.config.resolution:.0%}",
            EndReason.GENERATOR_SATURATED: f"{held}{broke}, the load generator saturated",
            EndReason.SLO_NEVER_HELD: f"{held}{broke}, the smallest load tried",
            EndReason.BUDGET: f"{held}{broke}; the budget left no time for another step",
            EndReason.STEP_LIMIT: f"{held}{broke}; the step limit "
            f"({self.config.max_steps}) was reached",
            EndReason.SERVER_ERROR: f"{held}{broke}; a step could not run: "
            f"{self._steps[-1].outcome.failure if self._steps else 'unknown'}",
        }
        return texts[reason]
