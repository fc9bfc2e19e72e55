"""A step: the scenario reshaped to one load (per varied dimension), and a recorded
step's results read back as the search sees them (warm-up excluded).

The fixture `data/fanout-100-clients.json` is the results.json of a real step: fanout.yaml
at 100 clients, 2 s warm-up, 5 s measured, against the embedded reference server.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import attrs
import orjson
import pytest
from hdrh.histogram import HdrHistogram

from loadtool.capacity.steps import (
    STEP_OVERHEAD_S,
    cpu_share,
    measure_step,
    plan_step,
    start_load,
    window_rows,
)
from loadtool.results.schema import parse_iso_utc
from loadtool.scenario import Scenario, Vary, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "data" / "fanout-100-clients.json"


def scenario(text: str) -> Scenario:
    return parse_scenario(textwrap.dedent(text), "x.yaml")


def test_clients_step() -> None:
    fanout = load_scenario(REPO / "scenarios" / "fanout.yaml")
    assert start_load(fanout) == 25  # its capacity.start
    plan = plan_step(fanout, 300)
    step = plan.scenario
    assert plan.vary is Vary.CLIENTS
    assert plan.clients == 300
    assert step.population.clients == 300
    assert [p.name for p in step.phases] == ["warmup", "measure"]
    assert plan.warmup_s == 5
    assert plan.measure_s == 10
    assert step.clients_at(0) == 300
    assert step.clients_at(12.9) == 300
    assert step.send_rate_at(1.0) == 1.0
    assert step.send_rate_at(6.0) == 1.0
    assert step.thresholds == ()
    assert step.faults == ()
    assert plan.offered_per_s == 300
    assert plan.nominal_s == 5 + 10 + fanout.drain_s + STEP_OVERHEAD_S


def test_the_warm_up_stretches_to_connect_everyone() -> None:
    s = scenario(
        """\
        name: t
        population: {clients: 10, connect_rate: 100/s}
        duration: 10s
        capacity: {warmup: 2s, step_duration: 5s}
        """
    )
    assert plan_step(s, 10).warmup_s == 2
    assert plan_step(s, 1000).warmup_s == 15  # 1.5 x 1000 / 100


def test_send_rate_step_keeps_the_clients() -> None:
    s = scenario(
        """\
        name: t
        population: {clients: 40}
        phases:
          - {duration: 5s, send_rate: 0}
          - {duration: 10s, send_rate: 3/s}
        behaviour: {send_rate: 2/s}
        capacity: {vary: send_rate, warmup: 0s}
        """
    )
    assert start_load(s) == 2.0
    plan = plan_step(s, 8.0)
    assert plan.clients == 40
    assert plan.scenario.behaviour.send_rate == 8.0
    assert [p.name for p in plan.scenario.phases] == ["warmup", "measure"]  # 1.5 x 40/500 s
    assert plan.scenario.send_rate_at(0.5) == 8.0  # the phases' own rates are gone
    assert plan.offered_per_s == 320


def test_arrival_rate_step_grows_the_ceiling_and_warms_up_a_lifetime() -> None:
    s = scenario(
        """\
        name: t
        population:
          arrival: {rate: 2/s, lifetime: 8s, max_clients: 20}
        duration: 30s
        behaviour: {send_rate: 1/s}
        """
    )
    assert start_load(s) == 2.0
    plan = plan_step(s, 10.0)
    arrival = plan.scenario.population.arrival
    assert arrival is not None
    assert arrival.rate == 10.0
    assert arrival.max_clients == 161  # 2 x 10/s x 8 s + 1: room for every arrival
    assert plan.warmup_s == 8  # one lifetime: the population reaches its steady size
    assert plan.clients is None
    assert plan.offered_per_s == 80  # 10/s x 8 s x 1/s


def test_cpu_share() -> None:
    s = 1_000_000_000
    samples = [(0, 1.0), (1 * s, 1.5), (2 * s, 2.0), (3 * s, 2.9), (4 * s, 3.0)]
    assert cpu_share(samples, 1 * s, 3 * s) == pytest.approx(0.7)  # 1.4 CPU s in 2 s
    assert cpu_share(samples, int(1.5 * s), int(2.5 * s)) == pytest.approx(0.7)  # 1..3
    assert cpu_share(samples, -1, 3 * s) is None  # no sample before the window
    assert cpu_share(samples, 1 * s, 5 * s) is None  # none after it
    assert cpu_share([], 0, 1) is None


def test_a_recorded_step_is_measured_on_its_window_only() -> None:
    results = orjson.loads(FIXTURE.read_bytes())
    fanout = load_scenario(REPO / "scenarios" / "fanout.yaml")
    plan = attrs.evolve(plan_step(fanout, 100), warmup_s=2.0, measure_s=5.0)
    rows = window_rows(results, plan)
    assert [row["t"] for row in rows] == [2, 3, 4, 5, 6]
    # The window's p99, recomputed independently with hdrh from the rows' histograms.
    merged = HdrHistogram(1, 3_600_000_000, 3)
    for row in rows:
        merged.add(HdrHistogram.decode(row["hist"]))
    start = parse_iso_utc(results["start"])
    samples = [(start + 1_000_000_000, 10.0), (start + 8_000_000_000, 10.35)]
    outcome = measure_step(results, plan, server_cpu_samples=samples, wall_s=9.0)
    assert outcome.metrics["latency.p99"] == pytest.approx(
        merged.get_value_at_percentile(99) / 1000, rel=2e-3
    )
    assert outcome.metrics["latency.p99"] != results["latency_ms"]["p99"]  # not whole-run
    assert outcome.metrics["lost"] == results["totals"]["lost"]  # counters: whole step
    f = outcome.figures
    assert f["delivered_per_s"] == sum(row["delivered"] for row in rows) / 5
    assert f["sent_per_s"] == 100.0
    assert f["connected_min"] == 100
    assert outcome.server_cpu == pytest.approx(0.35 / 7)  # the samples around the window
    assert not outcome.saturated
    assert outcome.shortfall is None
    assert outcome.wall_s == 9.0


def test_a_step_that_did_not_hold_its_clients_or_send_its_schedule() -> None:
    results = orjson.loads(FIXTURE.read_bytes())
    fanout = load_scenario(REPO / "scenarios" / "fanout.yaml")
    plan = attrs.evolve(
        plan_step(fanout, 100),
        load=120,
        warmup_s=2.0,
        measure_s=5.0,
        clients=120,  # the recorded run had 100 connected
        offered_per_s=120.0 / 0.85,  # and sent 100/s
    )
    outcome = measure_step(results, plan)
    assert outcome.shortfall == "only 100 of 120 clients connected during the window"
    assert outcome.saturated
    assert outcome.saturation_reasons[-2] == "sent 100/s of the 141/s scheduled"
    # 3.0 CPU s in a 7.3 s run: 41% of a core, so the generator was starved, not busy.
    assert outcome.saturation_reasons[-1] == (
        "the generator used only 41% of a core while it lagged: it was waiting (for a CPU "
        "taken by other processes, or blocked), not busy"
    )
    assert outcome.server_cpu is None  # no samples: unknown
