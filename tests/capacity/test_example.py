"""The committed example (reports/capacity/, made by the command in docs/capacity.md) is
what the code makes of its own step results: every step's window figures and verdict are
recomputed from the step's results.json, and the answer from those verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from loadtool.capacity.search import CapacitySearch, Finished, SearchConfig
from loadtool.capacity.steps import measure_step, plan_step
from loadtool.results.schema import read_results
from loadtool.scenario import load_scenario, parse_slo

REPO: Final = Path(__file__).resolve().parents[2]
EXAMPLE: Final = REPO / "reports" / "capacity"
WINDOW_FIGURES: Final = (
    "sent_per_s",
    "delivered_per_s",
    "connected_min",
    "latency_p50_ms",
    "latency_p99_ms",
    "lost",
)


def example() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((EXAMPLE / "capacity.json").read_bytes())
    return document


def test_the_example_steps_are_their_results() -> None:
    document = example()
    scenario = load_scenario(REPO / "scenarios" / "fanout.yaml")
    assert document["scenario"]["sha256"] == scenario.sha256  # made from this very file
    for step in document["steps"]:
        results = read_results(EXAMPLE / step["results"])
        outcome = measure_step(results, plan_step(scenario, step["load"]))
        for key in WINDOW_FIGURES:
            assert outcome.figures[key] == pytest.approx(step["figures"][key]), key
        assert outcome.saturated is step["saturated"]


def test_the_example_answer_follows_from_its_steps() -> None:
    document = example()
    search = document["search"]
    replay = CapacitySearch(
        SearchConfig(
            slo=parse_slo(",".join(document["slo"])),
            start=search["start"],
            factor=search["factor"],
            max_steps=search["max_steps"],
            resolution=search["resolution"],
            budget_s=search["budget_s"],
            step_cost_s=1.0,
            whole=True,
        )
    )
    scenario = load_scenario(REPO / "scenarios" / "fanout.yaml")
    for step in document["steps"]:
        action = replay.next_action(0.0)
        assert not isinstance(action, Finished)
        assert action.load == step["load"]
        results = read_results(EXAMPLE / step["results"])
        record = replay.record(measure_step(results, plan_step(scenario, step["load"])))
        assert record.verdict.value == step["verdict"]
    finished = replay.next_action(0.0)
    assert isinstance(finished, Finished)
    assert finished.reason.value == document["ended"]
    assert finished.sustainable == document["sustainable"]["value"]
    assert finished.limited_by.value == document["limited_by"]
