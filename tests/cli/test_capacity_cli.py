"""`loadtool capacity` as a process: invalid input exits 2 before anything starts (no
output folder), naming what is wrong; an unreachable target exits 3. (The search itself
runs end to end in tests/capacity/test_driver.py.)"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest
import trio

from loadtool.capacity.search import CapacitySearch, RunStep, SearchConfig, StepOutcome
from loadtool.capacity.steps import plan_step
from loadtool.cli.capacity import _Progress
from loadtool.scenario import load_scenario, parse_slo

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
CEILING_S: Final = 40  # each command here ends within seconds

TINY: Final = """\
name: tiny-capacity
population:
  clients: 2
duration: 5s
drain: 500ms
capacity: {start: 2, max_steps: 2, warmup: 1s, step_duration: 2s}
thresholds:
  - lost == 0
"""


async def capacity(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(CEILING_S):
        return await trio.run_process(
            [str(LOADTOOL), "capacity", *args],
            cwd=str(cwd),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("scenario", "args", "message"),
    [
        (
            TINY,
            ["--slo", "latency.p99<100ms,lsot==0"],
            "Error: --slo: SLO term 2 'lsot==0': expected a metric name, found 'lsot'; did "
            "you mean 'lost'?",
        ),
        (TINY, ["--slo", "latency.p99<100ms,"], "Error: --slo: SLO term 2 of 2 is empty"),
        (
            TINY,
            ["--plan", "users=100,rate=1/s"],
            "Error: --plan: plan key fanout: expected 'fanout' or 'rooms'",
        ),
        (TINY, ["--budget", "5s"], "Error: --budget 5s is shorter than one step (~8s"),
        (TINY, ["--resolution", "2"], "capacity.resolution: expected a percentage above 0%"),
        (TINY, ["--factor", "0.5"], "capacity.factor: expected a growth factor above 1"),
        (
            TINY.replace("thresholds:\n  - lost == 0\n", ""),
            [],
            "Error: no SLO: give --slo 'latency.p99<100ms,lost==0', or capacity.slo",
        ),
        (
            TINY.replace("{start: 2,", "{vary: arrival_rate, start: 2,"),
            [],
            "x.yaml:6: capacity.vary: expected clients or send_rate with the closed model",
        ),
    ],
)
async def test_invalid_input_exits_2_before_anything_starts(
    tmp_path: Path, scenario: str, args: list[str], message: str
) -> None:
    (tmp_path / "x.yaml").write_text(scenario)
    done = await capacity(tmp_path, "x.yaml", "--out", "out", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.decode()
    assert done.stdout == b""
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "reports").exists()


async def test_an_unreachable_target_exits_3(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(TINY)
    url = f"ws://127.0.0.1:{closed_port()}/"
    done = await capacity(tmp_path, "x.yaml", "--target", url, "--out", "out", "--quiet")
    assert done.returncode == 3, done.stderr
    assert f"Error: {url} is unreachable" in done.stderr.decode()
    assert not (tmp_path / "out" / "capacity.json").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_line_per_step() -> None:
    search = CapacitySearch(
        SearchConfig(
            slo=parse_slo("latency.p99<100ms"),
            start=50,
            factor=2,
            max_steps=4,
            resolution=0.1,
            budget_s=600,
            step_cost_s=20,
            whole=True,
        )
    )
    terminal = _Terminal()
    progress = _Progress(terminal, quiet=False, unit="clients")
    step = search.next_action(0.0)
    assert isinstance(step, RunStep)
    fanout = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "fanout.yaml")
    progress.step(step, plan_step(fanout, step.load))
    record = search.record(
        StepOutcome(
            load=50,
            metrics={"latency.p99": 250.0},
            server_cpu=0.93,
            figures={"latency_p99_ms": 250.0, "delivered_per_s": 2500.0},
        )
    )
    progress.record(record)
    progress.close()
    lines = terminal.getvalue().split("\r")
    assert lines[1].startswith("step  1 grow           50 clients  running (~")
    assert lines[2].rstrip() == (
        "step  1 grow           50 clients  p99  250.0 ms  delivered    2,500/s  "
        "server CPU  93%  BROKEN  (latency.p99<100ms)"
    )
    assert terminal.getvalue().endswith("\n")
    assert terminal.getvalue().count("\n") == 1
