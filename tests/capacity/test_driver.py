"""One real capacity search end to end: two tiny steps against the embedded reference
server (a fresh `loadtool serve` child per step), then capacity.json, knee.png and
capacity.html written as `loadtool capacity` writes them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import orjson
import pytest
import trio

from loadtool.capacity.driver import CapacitySettings, run_capacity, write_outputs
from loadtool.capacity.report import knee_figure
from loadtool.capacity.search import EndReason, RunStep, StepRecord, Verdict
from loadtool.capacity.steps import StepPlan
from loadtool.results.schema import read_results
from loadtool.scenario import parse_scenario, parse_slo

CEILING_S: Final = 90  # two steps of ~6 s each, plus server start-up on a busy machine
TINY: Final = """\
name: tiny-capacity
population:
  clients: 2
  rooms: 1
duration: 10s
drain: 1s
behaviour:
  send_rate: 5/s
capacity:
  vary: clients
  start: 2
  factor: 2
  max_steps: 2
  warmup: 1s
  step_duration: 2s
  plan: {users: 1000, rooms: 100, rate: 0.5/s}
"""


@pytest.mark.slow
async def test_a_two_step_search_against_the_reference_server(tmp_path: Path) -> None:
    scenario = parse_scenario(TINY, "tiny.yaml")
    started: list[tuple[RunStep, StepPlan]] = []
    judged: list[StepRecord] = []
    settings = CapacitySettings(
        scenario=scenario,
        slo=parse_slo("latency.p99<5s,lost==0"),  # loose: it must hold on a busy machine
        budget_s=80.0,
        out_dir=tmp_path,
        plan=scenario.capacity.plan,
        on_step=lambda step, plan: started.append((step, plan)),
        on_record=judged.append,
    )
    with trio.fail_after(CEILING_S):
        run = await run_capacity(settings)
    assert [step.load for step, _ in started] == [2, 4]
    assert [record.verdict for record in judged] == [Verdict.HELD, Verdict.HELD]
    finished = run.finished
    assert finished.reason is EndReason.STEP_LIMIT
    assert finished.sustainable == 4
    assert finished.lower_bound

    document = await trio.to_thread.run_sync(write_outputs, run, scenario, settings.plan, tmp_path)
    written = orjson.loads((tmp_path / "capacity.json").read_bytes())
    assert written == orjson.loads(orjson.dumps(document))
    assert written["sustainable"]["value"] == 4
    assert written["sustainable"]["unit"] == "clients"
    assert written["sustainable"]["lower_bound"] is True
    assert written["limited_by"] == "none"
    assert written["ended"] == "step_limit"
    assert written["slo"] == ["latency.p99<5s", "lost==0"]
    assert written["target"] == {"urls": [], "embedded": True}
    for step, clients in zip(written["steps"], (2, 4), strict=True):
        f = step["figures"]
        assert step["load"] == clients
        assert f["connected_min"] == clients
        # clients x 5/s sent, each delivered to every member of the one room.
        assert f["sent_per_s"] == pytest.approx(clients * 5, rel=0.25)
        assert f["delivered_per_s"] == pytest.approx(clients * 5 * clients, rel=0.25)
        assert f["latency_p99_ms"] > 0
        assert f["lost"] == 0
        results = read_results(tmp_path / step["results"])  # validates
        assert results["target"]["embedded"] is True
        assert results["totals"]["lost"] == 0
        if sys.platform == "linux":
            assert step["server_cpu"] is not None
            assert 0 < step["server_cpu"] < 2
    plan = written["plan"]
    assert plan["deliveries_per_s"] == pytest.approx(1000 * 0.5 * 10)
    assert plan["nodes"] >= 1

    png = (tmp_path / "knee.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
    fig = knee_figure(written)
    latency, throughput = fig.axes
    assert throughput.get_xlabel() == "offered load (clients)"
    p99 = next(line for line in latency.get_lines() if line.get_label() == "latency p99")
    assert list(p99.get_xdata()) == [2, 4]
    assert "SLO latency.p99<5s" in [line.get_label() for line in latency.get_lines()]
    html = (tmp_path / "capacity.html").read_text()
    assert 'src="data:image/png;base64,' in html
    assert "at least 4 clients" in html
