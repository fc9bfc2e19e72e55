"""`python -m bench fanout --quick`: the harness end to end against real servers.

One layout, one round, a few seconds of load: the reference server and the seed Node server
really run and are really measured, but the figures are not checked (no timing is asserted
in tests; bench/README.md has the measured ones). What is checked is that the run completes
and that the JSON it writes has the documented shape.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.seednode import unavailable

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 300
REPO_ROOT = Path(__file__).resolve().parents[2]  # where `python -m bench` is found


def test_quick_fanout_writes_results_and_a_chart(seed_node_modules: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        unavailable("matplotlib is not installed: pip install -e '.[dev]'")
    env = {**os.environ, "LOADTOOL_SEED_NODE_MODULES": str(seed_node_modules), "CI": "true"}
    argv = [sys.executable, "-m", "bench", "fanout", "--quick", "--layout", "one room of 100",
            "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("*-fanout.json")
    assert path.with_suffix(".png").stat().st_size > 0
    doc = json.loads(path.read_text())
    assert doc["bench"] == "fanout"
    assert {"commit", "cpus", "loadavg_at_start"} <= doc["machine"].keys()
    assert doc["rounds"] == 1
    [summary] = doc["summary"]
    assert summary["metric"] == "one room of 100"
    assert (summary["a"], summary["b"], summary["target"]) == ("reference", "node", 1.2)
    assert [run["variant"] for run in doc["runs"]] == ["reference", "node"]  # alternation
    for run in doc["runs"]:
        assert run["clients"] == 100
        assert run["window_deliveries"] > 0
        assert run["window_server_cpu_s"] > 0
        assert run["deliveries_per_server_cpu_s"] == round(
            run["window_deliveries"] / run["window_server_cpu_s"]
        )
        assert run["lost"] == 0
    medians = sorted(r["deliveries_per_server_cpu_s"] for r in doc["runs"])
    assert {summary["a_median"], summary["b_median"]} == set(medians)


def test_unknown_layout_is_a_clear_error(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bench", "fanout", "--layout", "7 rooms", "--out", str(tmp_path)]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no fanout layout named '7 rooms': use ['one room of 100', " in done.stderr
