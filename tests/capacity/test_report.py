"""capacity.json, the knee plot and capacity.html, from a search run against the
simulated server of test_search.py (knee at 900 for p99 < 100 ms): the document holds the
answer with its unit, the limit, the SLO, how the search ended and every step; the figure
has its axes, series, SLO line and sustainable marker (checked on the Figure, not pixels);
the page holds the answer, the planning table and the embedded plot."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from loadtool.capacity.report import answer_text, build_document, knee_figure, render_html
from loadtool.capacity.search import CapacitySearch, Finished, SearchConfig, StepOutcome
from loadtool.report import page
from loadtool.scenario import Plan, Vary, parse_scenario, parse_slo

SCENARIO = parse_scenario("name: sim\npopulation: {clients: 100}\nduration: 10s\n", "sim.yaml")


def simulated(load: float, *, generator: float = math.inf) -> StepOutcome:
    """p99 = 10 / (1 - load / 1000) ms; 2 deliveries per client per second."""
    p99 = 10 / (1 - load / 1000) if load < 1000 else 1e6
    saturated = load >= generator
    if saturated:
        p99 += 500
    figures = {
        "latency_p50_ms": p99 / 4,
        "latency_p90_ms": p99 / 2,
        "latency_p99_ms": p99,
        "delivered_per_s": 2.0 * load,
        "sent_per_s": float(load),
        "connected_min": float(load),
        "lost": 0.0,
    }
    return StepOutcome(
        load=load,
        metrics={"latency.p99": p99, "lost": 0.0},
        saturated=saturated,
        server_cpu=min(1.0, load / 1000),  # a busy core at the knee
        wall_s=20.0,
        figures=figures,
    )


def document(generator: float = math.inf, plan: Plan | None = None) -> dict[str, Any]:
    config = SearchConfig(
        slo=parse_slo("latency.p99<100ms,lost==0"),
        start=100.0,
        factor=2.0,
        max_steps=12,
        resolution=0.05,
        budget_s=600.0,
        step_cost_s=20.0,
        whole=True,
    )
    search = CapacitySearch(config)
    elapsed = 0.0
    while True:
        action = search.next_action(elapsed)
        if isinstance(action, Finished):
            break
        search.record(simulated(action.load, generator=generator))
        elapsed += 20.0
    doc = build_document(
        scenario=SCENARIO,
        vary=Vary.CLIENTS,
        config=config,
        finished=action,
        elapsed_s=elapsed,
        target={"urls": [], "embedded": True},
        results_paths={r.index: f"steps/{r.index:02d}/results.json" for r in action.steps},
        step_duration_s=15.0,
        warmup_s=5.0,
        plan=plan,
    )
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(doc))  # JSON-safe, as written
    return parsed


def test_the_document() -> None:
    doc = document(plan=Plan(users=50_000, rooms=5000, rate=0.2, headroom=0.3))
    s = doc["sustainable"]
    assert s["unit"] == "clients"
    assert 855 <= s["value"] < 900
    assert not s["lower_bound"]
    assert s["upper"] >= 900
    assert s["deliveries_per_s"] == 2 * s["value"]
    assert doc["limited_by"] == "server_cpu"  # >= 90% of a core where it broke
    assert doc["ended"] == "found"
    assert doc["slo"] == ["latency.p99<100ms", "lost==0"]
    assert [step["load"] for step in doc["steps"]][:5] == [100, 200, 400, 800, 1600]
    first = doc["steps"][0]
    assert first["verdict"] == "held"
    assert first["checks"] == [
        {"expr": "latency.p99<100ms", "value": pytest.approx(10 / 0.9), "ok": True},
        {"expr": "lost==0", "value": 0.0, "ok": True},
    ]
    assert first["results"] == "steps/01/results.json"
    plan = doc["plan"]
    assert plan["deliveries_per_s"] == pytest.approx(100_000)
    assert plan["deliveries_per_node"] == s["deliveries_per_s"]
    assert plan["nodes"] == math.ceil(100_000 / s["deliveries_per_s"] * 1.3)
    assert "Sustainable per node:" in answer_text(doc)
    assert f"{s['value']:g} clients" in answer_text(doc)


def test_a_generator_bound_document_says_lower_bound() -> None:
    doc = document(generator=300)
    assert doc["sustainable"]["lower_bound"]
    assert doc["limited_by"] == "generator"
    assert doc["ended"] == "generator_saturated"
    assert "at least" in answer_text(doc)
    assert "lower bound" in answer_text(doc)
    assert doc["plan"] is None


def test_the_knee_figure() -> None:
    doc = document()
    fig = knee_figure(doc)
    latency, throughput = fig.axes
    assert latency.get_yscale() == "log"
    assert latency.get_ylabel() == "latency (ms, log scale)"
    assert throughput.get_xlabel() == "offered load (clients)"
    assert throughput.get_ylabel() == "delivered per second"
    assert "latency and throughput vs offered load" in latency.get_title()
    labels = [line.get_label() for line in latency.get_lines()]
    for expected in ("latency p50", "latency p90", "latency p99", "SLO latency.p99<100ms",
                     "SLO broken"):  # fmt: skip
        assert expected in labels
    steps = sorted(doc["steps"], key=lambda s: s["load"])
    p99 = next(line for line in latency.get_lines() if line.get_label() == "latency p99")
    assert list(p99.get_xdata()) == [s["load"] for s in steps]
    slo = next(line for line in latency.get_lines() if line.get_label().startswith("SLO lat"))
    assert list(slo.get_ydata()) == [100.0, 100.0]
    value = doc["sustainable"]["value"]
    marker = next(line for line in latency.get_lines() if line.get_label().startswith("sust"))
    assert list(marker.get_xdata()) == [value, value]
    assert marker.get_label() == f"sustainable {value:g}"
    delivered = throughput.get_lines()[0]
    assert list(delivered.get_ydata()) == [2.0 * s["load"] for s in steps]


def test_the_page() -> None:
    doc = document(plan=Plan(users=50_000, rooms=5000, rate=0.2))
    src = page.figure_to_data_uri(knee_figure(doc))
    html = render_html(doc, src)
    assert html.startswith("<!DOCTYPE html>")
    assert f'src="{src}"' in html
    assert "Sustainable per node:" in html
    assert f"{doc['sustainable']['value']:g} clients" in html
    assert "<h2>Planning</h2>" in html
    assert f'<td class="num">{doc["plan"]["nodes"]}</td>' in html
    assert "latency.p99&lt;100ms" in html  # escaped
    assert html.count("<tr class=") == len(doc["steps"])
    assert '<a href="steps/01/results.json">results.json</a>' in html
