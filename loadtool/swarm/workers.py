"""`loadtool run --workers N`: the same scenario split over N local processes, merged exactly.

The mechanism is the sharded run of issue 6 on one machine: the parent owns the target
(it starts the embedded server, and runs its `restart_server` faults), then starts N
`loadtool run --shard I/N --start-at T` children against it, each writing a partial
results file, and merges them with `merge_shards`, the checks and merge of `loadtool
merge` (counters add, histograms and ledger states merge losslessly, time series align
on the wall clock).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import attrs
import trio

from ..results.runclock import RunClock
from ..results.schema import ResultsError, read_results, results_metrics
from ..results.shards import ShardSetError, merge_shards
from ..scenario import RestartServerFault, Scenario
from ..scenario.thresholds import evaluate
from .embedded import EmbeddedOptions, EmbeddedServer
from .engine import TargetUnreachable

START_DELAY_S: Final = 3.0  # seconds between launching the workers and the common start
WAIT_MARGIN_S: Final = 60.0  # seconds a worker may overrun the scenario before it is killed
SECRET_ENV: Final = "LOADTOOL_SECRET"


class WorkerFailed(Exception):
    """A worker exited with an error (its stderr tail is in the message)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@attrs.frozen(kw_only=True)
class WorkerPlan:
    scenario_file: Path
    scenario: Scenario  # with the command-line overrides applied
    workers: int
    out_dir: Path
    run_id: str
    overrides: tuple[str, ...]  # --duration/--seed/--dialect, passed on to every worker
    targets: tuple[str, ...]  # explicit targets; () = embedded server
    secret: str | None


async def run_workers(plan: WorkerPlan) -> dict[str, Any]:
    """Run the workers and return the merged results document.

    Raises:
        WorkerFailed: a worker failed (exit code 2 or 3 passed on), or overran its time.
        EmbeddedServerError: the embedded server did not start.
    """
    scenario = plan.scenario
    server: EmbeddedServer | None = None
    targets, secret = plan.targets, plan.secret
    if not targets:
        has_restarts = any(isinstance(f, RestartServerFault) for f in scenario.faults)
        capacity = scenario.population.clients or scenario.population.capacity
        server = EmbeddedServer(
            EmbeddedOptions(
                db_path=plan.out_dir / "server.db" if has_restarts else None,
                log_path=plan.out_dir / "server.log",
                max_connections=max(1000, 2 * capacity),
            ),
            secret=secret,
        )
        targets, secret = (await server.start(),), server.secret
    clock = RunClock.from_system()
    restarts: list[dict[str, Any]] = []
    start_at = clock.now_ns() + int(START_DELAY_S * 1e9)
    try:
        async with trio.open_nursery() as nursery:
            if server is not None:
                nursery.start_soon(_restart_faults, scenario, server, start_at, clock, restarts)
            codes = await _run_children(plan, targets, secret, start_at)
            nursery.cancel_scope.cancel()
    finally:
        if server is not None:
            await server.stop()
    for index, (code, tail) in enumerate(codes, start=1):
        if code not in (0, 1):
            raise WorkerFailed(f"worker {index}/{plan.workers} failed: {tail}", code)
    paths = [plan.out_dir / f"worker-{i}" / "results.json" for i in range(1, plan.workers + 1)]
    try:
        merged = merge_shards(
            [read_results(path) for path in paths],
            [str(path) for path in paths],
            thresholds=lambda doc: evaluate(scenario.thresholds, results_metrics(doc)),
        )
    except (ResultsError, ShardSetError) as exc:
        raise WorkerFailed(f"the workers' results do not merge: {exc}", 1) from exc
    if server is not None:
        merged["target"]["embedded"] = True
        merged["faults"] = sorted([*merged["faults"], *restarts], key=lambda f: f["at_s"])
    return merged


async def _run_children(
    plan: WorkerPlan, targets: tuple[str, ...], secret: str | None, start_at: int
) -> list[tuple[int, str]]:
    limit = plan.scenario.total_duration_s + plan.scenario.drain_s + START_DELAY_S + WAIT_MARGIN_S
    results: list[tuple[int, str]] = [(0, "")] * plan.workers
    env = dict(os.environ)
    if secret is not None:
        env[SECRET_ENV] = secret  # not on the command line, where `ps` would show it

    async def one(index: int) -> None:
        out = plan.out_dir / f"worker-{index}"
        argv = [
            sys.executable, "-m", "loadtool", "run", str(plan.scenario_file),
            "--shard", f"{index}/{plan.workers}", "--start-at", f"{start_at / 1e9:.6f}",
            "--run-id", plan.run_id, "--out", str(out), "--quiet", "--no-report",
            *plan.overrides,
        ]  # fmt: skip
        for url in targets:
            argv += ["--target", url]
        if secret is not None:
            argv += ["--secret-from-env"]
        out.mkdir(parents=True, exist_ok=True)
        with trio.move_on_after(limit) as scope:
            done = await trio.run_process(
                argv, check=False, env=env, stdout=subprocess.DEVNULL, capture_stderr=True
            )
        if scope.cancelled_caught:
            results[index - 1] = (4, f"did not finish within {limit:.0f}s")
            return
        tail = " | ".join(done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
        results[index - 1] = (done.returncode, tail)

    async with trio.open_nursery() as nursery:
        for index in range(1, plan.workers + 1):
            nursery.start_soon(one, index)
    if all(code == 3 for code, _ in results):
        raise TargetUnreachable(results[0][1])
    return results


async def _restart_faults(
    scenario: Scenario,
    server: EmbeddedServer,
    start_at: int,
    clock: RunClock,
    record: list[dict[str, Any]],
) -> None:
    """The parent owns the embedded server, so it runs the `restart_server` faults."""
    for fault in sorted(scenario.faults, key=lambda f: f.at_s):
        if isinstance(fault, RestartServerFault):
            due = start_at + int(fault.at_s * 1e9)
            await trio.sleep(max(0.0, (due - clock.now_ns()) / 1e9))
            await server.restart()
            at = round((clock.now_ns() - start_at) / 1e9, 3)
            detail = f"killed (SIGKILL) and restarted the embedded server on {server.url}"
            record.append({"at_s": at, "kind": fault.kind, "detail": detail})
