"""One search step: the scenario scaled to a load, and what its results say. Pure.

A step is one ordinary run of the scenario, reshaped (docs/capacity.md):

    phase `warmup`  (not measured): every client connects and the load starts
    phase `measure` (the steady window): the figures the SLO is judged on
    drain           as the scenario says

Latency percentiles and throughput come from the per-second series of the measured
window only (the `timeseries` rows of results.json, histograms merged); the counters
(lost, duplicates, errors, ...) and ack/reconnect latencies are the whole step's, because
results.json keeps them only per run: a message lost during the warm-up counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ..results.histogram import SUMMARY_PERCENTILES, LatencyHistogram
from ..results.schema import parse_iso_utc, results_metrics
from ..scenario import Capacity, Phase, Scenario, Vary
from ..scenario.model import build_under
from .search import StepOutcome

STEP_OVERHEAD_S: Final = 4.0  # seconds per step beyond its phases: server start, connects, stop
CONNECT_MARGIN: Final = 1.5  # the warm-up lasts at least this x the time to connect everyone
HELD_CLIENTS: Final = 0.99  # fewer connected than this share in the window: a shortfall
SENT_SHARE: Final = 0.9  # sending less than this share of the schedule: the generator lags
STARVED_SHARE: Final = 0.6  # a saturated generator using less of a core than this was starved
_LATENCY_KEYS: Final = ("p50", "p90", "p95", "p99", "p999")


@attrs.frozen(kw_only=True)
class StepPlan:
    """A step's scaled scenario and what it is meant to offer."""

    load: float
    vary: Vary
    scenario: Scenario
    warmup_s: float
    measure_s: float
    clients: int | None  # intended connected clients (closed model)
    offered_per_s: float  # intended messages sent per second at full load

    @property
    def nominal_s(self) -> float:
        """Seconds the step should take: its phases, its drain and the fixed overhead."""
        return self.warmup_s + self.measure_s + self.scenario.drain_s + STEP_OVERHEAD_S


def start_load(scenario: Scenario) -> float:
    """The load the search starts from: `capacity.start`, else the scenario's own value."""
    capacity = scenario.capacity
    if capacity.start is not None:
        return capacity.start
    vary = capacity.resolved_vary(scenario.population)
    if vary is Vary.CLIENTS:
        return float(scenario.population.capacity)
    if vary is Vary.ARRIVAL_RATE:
        assert scenario.population.arrival is not None  # checked by the model
        return scenario.population.arrival.rate
    return scenario.behaviour.send_rate


def plan_step(scenario: Scenario, load: float) -> StepPlan:
    """`scenario` reshaped to run at `load` of its varied dimension.

    Faults are left out (a capacity step measures steady load) and so are thresholds (the
    SLO is judged on the window, not the whole run). The warm-up is stretched to connect
    every client at the population's connect rate (and, in the open model, to one client
    lifetime, for the population to reach its steady size).

    Raises:
        ScenarioError: the scaled scenario is invalid (e.g. a load of 0 clients).
    """
    capacity: Capacity = scenario.capacity
    vary = capacity.resolved_vary(scenario.population)
    population = scenario.population
    behaviour = scenario.behaviour
    send_rate = behaviour.send_rate
    warmup = capacity.warmup_s
    clients: int | None = None
    if vary is Vary.CLIENTS:
        clients = int(load)
        population = attrs.evolve(population, clients=clients)
    elif vary is Vary.ARRIVAL_RATE:
        assert population.arrival is not None  # checked by the model
        lifetime = population.arrival.lifetime_s
        arrival = attrs.evolve(
            population.arrival,
            rate=load,
            max_clients=max(population.arrival.max_clients, math.ceil(2 * load * lifetime) + 1),
        )
        population = build_under("population", attrs.evolve, population, arrival=arrival)
        warmup = max(warmup, lifetime)
    else:
        send_rate = load
        behaviour = build_under("behaviour", attrs.evolve, behaviour, send_rate=load)
        clients = population.clients
    if clients is not None:
        warmup = max(warmup, CONNECT_MARGIN * clients / population.connect_rate)
    warmup = math.ceil(warmup)  # whole seconds: the series has one row per second
    phases = [Phase(name="measure", duration_s=capacity.step_duration_s)]
    if warmup > 0:
        phases.insert(0, Phase(name="warmup", duration_s=float(warmup)))
    step = build_under(
        "",
        attrs.evolve,
        scenario,
        population=population,
        behaviour=behaviour,
        phases=tuple(phases),
        faults=(),
        thresholds=(),
    )
    if clients is not None:
        offered = clients * send_rate
    else:
        assert population.arrival is not None
        offered = population.arrival.rate * population.arrival.lifetime_s * send_rate
    return StepPlan(
        load=load,
        vary=vary,
        scenario=step,
        warmup_s=float(warmup),
        measure_s=capacity.step_duration_s,
        clients=clients,
        offered_per_s=offered,
    )


def cpu_share(samples: Sequence[tuple[int, float]], start_ns: int, end_ns: int) -> float | None:
    """Share of one core used between `start_ns` and `end_ns` (wall clock), from samples
    (wall ns, cumulative CPU seconds) of a process: the last sample at or before the start
    and the first at or after the end. None without two such samples."""
    before = [s for s in samples if s[0] <= start_ns]
    after = [s for s in samples if s[0] >= end_ns]
    if not before or not after:
        return None
    (t0, c0), (t1, c1) = before[-1], after[0]
    if t1 <= t0:
        return None
    return max(0.0, (c1 - c0) / ((t1 - t0) / 1e9))


def window_rows(results: Mapping[str, Any], plan: StepPlan) -> list[Mapping[str, Any]]:
    """The time-series rows of the measured window: seconds warmup .. warmup+measure-1."""
    first = math.ceil(plan.warmup_s)
    last = math.floor(plan.warmup_s + plan.measure_s)  # exclusive
    rows: list[Mapping[str, Any]] = [r for r in results["timeseries"] if first <= r["t"] < last]
    return rows


def measure_step(
    results: Mapping[str, Any],
    plan: StepPlan,
    *,
    server_cpu_samples: Sequence[tuple[int, float]] = (),
    wall_s: float = 0.0,
) -> StepOutcome:
    """What a step's results say, for the search: window latency and throughput, the
    whole step's counters, generator health, server CPU over the window.

    A step is saturated when the results say so or when (closed model) it sent less than
    SENT_SHARE of its schedule; it has a shortfall when fewer than HELD_CLIENTS of its clients were
    connected at some second of the window (closed model).
    """
    rows = window_rows(results, plan)
    seconds = max(1, len(rows))
    window = LatencyHistogram()
    for row in rows:
        if row["hist"]:
            window.merge(LatencyHistogram.decode(row["hist"]))
    metrics = {k: v for k, v in results_metrics(results).items() if not k.startswith("latency.")}
    figures: dict[str, float | None] = {}
    if window.count:
        values = window.percentiles_ms(SUMMARY_PERCENTILES)
        for key, value in zip(_LATENCY_KEYS, values, strict=True):
            metrics[f"latency.{key}"] = value
        metrics["latency.max"] = window.max_ms
        metrics["latency.mean"] = window.mean_ms
    for key in (*_LATENCY_KEYS, "max"):
        figures[f"latency_{key}_ms"] = metrics.get(f"latency.{key}")
    sent_per_s = sum(r["sent"] for r in rows) / seconds
    delivered_per_s = sum(r["delivered"] for r in rows) / seconds
    connected = [r["connected"] for r in rows]
    figures |= {
        "offered_per_s": plan.offered_per_s,
        "sent_per_s": sent_per_s,
        "delivered_per_s": delivered_per_s,
        "window_deliveries": float(window.count),
        "connected_min": float(min(connected)) if connected else 0.0,
        "connected_mean": sum(connected) / len(connected) if connected else 0.0,
        "window_errors": float(sum(r["errors"] for r in rows)),
        "lost": metrics["lost"],
        "lost_rate": metrics["lost.rate"],
        "duplicates": metrics["duplicates"],
        "errors": metrics["errors"],
        "generator_cpu_s": float(results["generator"]["cpu_s"]),
        "generator_cpu": float(results["generator"]["cpu_s"]) / max(1e-9, results["duration_s"]),
        "generator_loop_lag_ms_p99": float(results["generator"]["loop_lag_ms_p99"]),
    }
    reasons = list(results["generator"].get("saturation_reasons", []))
    saturated = bool(results["generator"]["saturated"])
    # Closed model only: open-model arrivals are Poisson, their offered rate only a mean.
    closed = plan.clients is not None
    if closed and plan.offered_per_s > 0 and sent_per_s < SENT_SHARE * plan.offered_per_s:
        saturated = True
        reasons.append(f"sent {sent_per_s:,.0f}/s of the {plan.offered_per_s:,.0f}/s scheduled")
    share = figures["generator_cpu"] or 0.0
    if saturated and share < STARVED_SHARE:
        reasons.append(
            f"the generator used only {share:.0%} of a core while it lagged: it was "
            "waiting (for a CPU taken by other processes, or blocked), not busy"
        )
    shortfall = None
    if plan.clients is not None and connected and min(connected) < HELD_CLIENTS * plan.clients:
        shortfall = f"only {min(connected)} of {plan.clients} clients connected during the window"
    server_cpu = None
    if server_cpu_samples:
        start_ns = parse_iso_utc(results["start"].replace("Z", "+00:00"))
        begin = start_ns + int(plan.warmup_s * 1e9)
        server_cpu = cpu_share(server_cpu_samples, begin, begin + int(plan.measure_s * 1e9))
    figures["server_cpu"] = server_cpu
    return StepOutcome(
        load=plan.load,
        metrics=metrics,
        saturated=saturated,
        saturation_reasons=tuple(reasons),
        server_cpu=server_cpu,
        shortfall=shortfall,
        wall_s=wall_s,
        figures=figures,
    )
