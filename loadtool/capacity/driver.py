"""Runs the capacity search: each step one swarm run, the whole search inside its budget.

Thin I/O around the pure parts: `CapacitySearch` says which load to run, `plan_step`
reshapes the scenario, the swarm engine runs it, `measure_step` reads its results. With
no target the step gets its own embedded reference server (a `loadtool serve` child,
fresh per step so no step inherits another's backlog), whose CPU time is sampled from
/proc while the step runs (Linux; elsewhere server CPU is unknown).

Budget: before each step the search (and this driver, with the step's own estimate)
checks that the remaining budget covers it; a cancel scope around the whole search
enforces the budget if a step runs long, and the search then ends with reason `budget`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import trio

from ..report import page
from ..results.schema import write_results
from ..scenario import Plan, Scenario, Threshold
from ..swarm.embedded import EmbeddedOptions, EmbeddedServer, EmbeddedServerError
from ..swarm.engine import RunSettings, TargetUnreachable, run_scenario
from .report import KNEE_PNG, build_document, knee_figure, render_html
from .search import (
    CapacitySearch,
    EndReason,
    Finished,
    RunStep,
    SearchConfig,
    StepOutcome,
    StepRecord,
)
from .steps import StepPlan, measure_step, plan_step, start_load

CPU_SAMPLE_S: Final = 0.5  # seconds between samples of the server's CPU time


def _terms(values: Iterable[Threshold]) -> tuple[Threshold, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class CapacitySettings:
    scenario: Scenario  # overrides (target, secret) already applied
    slo: tuple[Threshold, ...] = attrs.field(converter=_terms)
    budget_s: float
    out_dir: Path
    plan: Plan | None = None
    on_step: Callable[[RunStep, StepPlan], None] | None = None  # a step starts
    on_record: Callable[[StepRecord], None] | None = None  # a step was judged


@attrs.frozen(kw_only=True)
class CapacityRun:
    """The search's end, the plans of the steps it ran and where their results are."""

    config: SearchConfig
    finished: Finished
    plans: dict[int, StepPlan]
    results_paths: dict[int, str]  # step index -> path relative to out_dir
    elapsed_s: float
    target: dict[str, Any]


def search_config(scenario: Scenario, slo: tuple[Threshold, ...], budget_s: float) -> SearchConfig:
    """The search's bounds from the scenario's `capacity` section.

    Raises:
        ValueError: an empty SLO.
    """
    capacity = scenario.capacity
    start = start_load(scenario)
    first = plan_step(scenario, start)
    vary = capacity.resolved_vary(scenario.population)
    whole = vary.value == "clients"
    return SearchConfig(
        slo=slo,
        start=start,
        factor=capacity.factor,
        max_steps=capacity.max_steps,
        resolution=capacity.resolution,
        budget_s=budget_s,
        step_cost_s=first.nominal_s,
        whole=whole,
        minimum=1.0 if whole else min(start, 0.01),
    )


async def run_capacity(settings: CapacitySettings) -> CapacityRun:
    """Run the search to its end.

    Raises:
        TargetUnreachable: the first step could not reach the target (nothing measured).
        EmbeddedServerError: the first step's embedded server did not start.
    """
    scenario = settings.scenario
    config = search_config(scenario, settings.slo, settings.budget_s)
    search = CapacitySearch(config)
    plans: dict[int, StepPlan] = {}
    paths: dict[int, str] = {}
    embedded = scenario.target.embedded
    target: dict[str, Any] = {"urls": list(scenario.target.urls), "embedded": embedded}
    began = trio.current_time()
    with trio.move_on_after(settings.budget_s) as budget:
        while True:
            elapsed = trio.current_time() - began
            action = search.next_action(elapsed)
            if isinstance(action, Finished):
                break
            plan = plan_step(scenario, action.load)
            if settings.budget_s - elapsed < plan.nominal_s:
                search.abandon(EndReason.BUDGET)
                break
            plans[action.index] = plan
            if settings.on_step is not None:
                settings.on_step(action, plan)
            step_dir = settings.out_dir / "steps" / f"{action.index:02d}-{action.load:g}"
            outcome, step_target = await _run_step(plan, step_dir, first=action.index == 1)
            if step_target is not None:
                if not embedded:  # an embedded server's URL changes with every step
                    target = step_target
                paths[action.index] = str((step_dir / "results.json").relative_to(settings.out_dir))
            record = search.record(outcome)
            if settings.on_record is not None:
                settings.on_record(record)
    if budget.cancelled_caught:
        search.abandon(EndReason.BUDGET)
    finished = search.finished
    assert finished is not None  # every way out of the loop ends the search
    return CapacityRun(
        config=config,
        finished=finished,
        plans=plans,
        results_paths=paths,
        elapsed_s=trio.current_time() - began,
        target=target,
    )


async def _run_step(
    plan: StepPlan, step_dir: Path, *, first: bool
) -> tuple[StepOutcome, dict[str, Any] | None]:
    """One step: its own embedded server (unless a target is given), the run, results.json
    in `step_dir`, the measurement. Returns the outcome and the step's target info (None
    when the step could not run)."""
    began = trio.current_time()
    await trio.Path(step_dir).mkdir(parents=True, exist_ok=True)
    scenario = plan.scenario
    server: EmbeddedServer | None = None
    samples: list[tuple[int, float]] = []
    exited: list[bool] = []
    try:
        if scenario.target.embedded:
            auth = scenario.target.auth
            server = EmbeddedServer(
                EmbeddedOptions(
                    log_path=step_dir / "server.log",
                    max_connections=max(1000, 2 * scenario.population.capacity),
                ),
                secret=auth.secret if auth is not None else None,
            )
            url = await server.start()
            scenario = scenario.with_overrides(targets=[url], secret=server.secret)
        async with trio.open_nursery() as nursery:
            if server is not None and server.pid is not None:
                nursery.start_soon(_sample_cpu, server.pid, samples, exited)
            results = await run_scenario(RunSettings(scenario=scenario, out_dir=step_dir))
            nursery.cancel_scope.cancel()
        if server is not None and server.pid is not None:
            _sample_once(server.pid, samples)  # the run may end within a sample period
    except (TargetUnreachable, EmbeddedServerError) as exc:
        if first:
            raise
        failure = f"{type(exc).__name__}: {exc}"
        return StepOutcome(load=plan.load, failure=failure, wall_s=_since(began)), None
    finally:
        if server is not None:
            await server.stop()
            with trio.CancelScope(shield=True):  # quick, and also when the budget expired
                log = trio.Path(step_dir / "server.log")
                if await log.exists() and (await log.stat()).st_size == 0:
                    await log.unlink()  # the server had nothing to say
    if server is not None:
        results["target"]["embedded"] = True  # the driver's own embedded server
    await trio.to_thread.run_sync(write_results, step_dir / "results.json", results)
    outcome = measure_step(results, plan, server_cpu_samples=samples, wall_s=_since(began))
    if exited:
        outcome = attrs.evolve(outcome, failure="the embedded server exited during the step")
    target = {"urls": results["target"]["urls"], "embedded": results["target"]["embedded"]}
    return outcome, target


def _since(began: float) -> float:
    return trio.current_time() - began


def _sample_once(pid: int, samples: list[tuple[int, float]]) -> None:
    reading = process_cpu_s(pid)
    if reading is not None:
        samples.append((time.time_ns(), reading))


async def _sample_cpu(pid: int, samples: list[tuple[int, float]], exited: list[bool]) -> None:
    """Append (wall ns, CPU seconds) of process `pid` every CPU_SAMPLE_S until cancelled;
    note in `exited` when it is gone (or a zombie). No /proc: no samples."""
    while True:
        reading = process_cpu_s(pid)
        if reading is None:
            if _HAS_PROC:
                exited.append(True)
            return
        samples.append((time.time_ns(), reading))
        await trio.sleep(CPU_SAMPLE_S)


_TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_HAS_PROC: Final = os.path.exists("/proc/self/stat")  # Linux: CPU samples are possible


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of `pid` from /proc/PID/stat; None when the process is
    gone, a zombie, or there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    state, utime, stime = fields[0], int(fields[11]), int(fields[12])
    if state in ("Z", "X"):
        return None
    return (utime + stime) / _TICKS_PER_S


def write_outputs(
    run: CapacityRun, scenario: Scenario, plan: Plan | None, out: Path
) -> dict[str, Any]:
    """capacity.json, knee.png and capacity.html in `out` (blocking file I/O); returns
    the capacity.json document."""
    capacity = scenario.capacity
    document = build_document(
        scenario=scenario,
        vary=capacity.resolved_vary(scenario.population),
        config=run.config,
        finished=run.finished,
        elapsed_s=run.elapsed_s,
        target=run.target,
        results_paths=run.results_paths,
        step_duration_s=capacity.step_duration_s,
        warmup_s=capacity.warmup_s,
        plan=plan,
    )
    (out / "capacity.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    figure = knee_figure(document)
    png = page.figure_bytes(figure, "png")
    (out / KNEE_PNG).write_bytes(png)
    html = render_html(document, page.data_uri(png, "image/png"))
    (out / "capacity.html").write_text(html, encoding="utf-8")
    return document
