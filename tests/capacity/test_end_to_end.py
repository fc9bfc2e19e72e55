"""One real capacity search end to end, as a user runs it: `loadtool capacity` with two
tiny steps against the embedded reference server (a fresh `loadtool serve` child per
step); then capacity.json, knee.png, capacity.html and each step's results.json."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import orjson
import pytest
import trio

from loadtool.capacity.report import knee_figure
from loadtool.results.schema import read_results

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
CEILING_S: Final = 90  # two steps of ~6 s each, plus start-up on a busy machine
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
    (tmp_path / "tiny.yaml").write_text(TINY)
    with trio.fail_after(CEILING_S):
        done = await trio.run_process(
            [str(LOADTOOL), "capacity", "tiny.yaml", "--out", "out", "--budget", "80s",
             "--slo", "latency.p99<5s,lost==0"],  # loose: it must hold on a busy machine
            cwd=str(tmp_path),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    # Not a terminal: one JSON object per step on stderr.
    events = [orjson.loads(line) for line in done.stderr.decode().splitlines()]
    assert [(e["event"], e["load"], e["verdict"]) for e in events] == [
        ("capacity_step", 2, "held"),
        ("capacity_step", 4, "held"),
    ]
    stdout = done.stdout.decode()
    assert stdout.startswith("Sustainable per node: at least 4 clients (")
    assert "ended: the step limit was reached (the SLO held at 4; the step limit (2) " in stdout
    assert "plan: 1,000 users x 0.5/s x fan-out 10 = 5,000 deliveries/s -> " in stdout
    assert stdout.endswith(f"report: {Path('out') / 'capacity.html'}  data: "
                           f"{Path('out') / 'capacity.json'}\n")  # fmt: skip

    written = orjson.loads((out / "capacity.json").read_bytes())
    assert written["sustainable"]["value"] == 4
    assert written["sustainable"]["unit"] == "clients"
    assert written["sustainable"]["lower_bound"] is True
    assert written["limited_by"] == "none"
    assert written["ended"] == "step_limit"
    assert written["slo"] == ["latency.p99<5s", "lost==0"]
    assert written["target"] == {"urls": [], "embedded": True}
    assert written["search"]["budget_s"] == 80
    assert written["search"]["elapsed_s"] < 80
    for step, clients in zip(written["steps"], (2, 4), strict=True):
        f = step["figures"]
        assert step["load"] == clients
        assert f["connected_min"] == clients
        # clients x 5/s sent, each delivered to every member of the one room.
        assert f["sent_per_s"] == pytest.approx(clients * 5, rel=0.25)
        assert f["delivered_per_s"] == pytest.approx(clients * 5 * clients, rel=0.25)
        assert f["latency_p99_ms"] > 0
        assert f["lost"] == 0
        results = read_results(out / step["results"])  # validates
        assert results["target"]["embedded"] is True
        assert results["totals"]["lost"] == 0
        if sys.platform == "linux":
            assert step["server_cpu"] is not None
            # /proc counts CPU in 10 ms ticks: a step this light can spend less than one
            # tick in its window, so 0 is a valid reading (tests/capacity/test_driver.py
            # checks the reading itself against the process's own CPU time).
            assert 0 <= step["server_cpu"] < 2
    plan = written["plan"]
    assert plan["deliveries_per_s"] == pytest.approx(1000 * 0.5 * 10)
    assert plan["deliveries_per_node"] == written["sustainable"]["deliveries_per_s"]
    assert plan["nodes"] >= 1

    png = (out / "knee.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
    fig = knee_figure(written)
    latency, throughput = fig.axes
    assert throughput.get_xlabel() == "offered load (clients)"
    p99 = next(line for line in latency.get_lines() if line.get_label() == "latency p99")
    assert list(p99.get_xdata()) == [2, 4]
    assert "SLO latency.p99<5s" in [line.get_label() for line in latency.get_lines()]
    html = (out / "capacity.html").read_text()
    assert 'src="data:image/png;base64,' in html
    assert "at least 4 clients" in html
