"""`loadtool run SCENARIO` as a process (docs/scenarios.md "Running: `loadtool run`"):
results.json is written and the exit code is the verdict: 0 every threshold passed,
1 a threshold failed, 2 an invalid scenario (nothing started, no results folder),
3 an unreachable target (the preflight, before any load). The shipped smoke scenario
runs as written, shortened with `--duration`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

import trio

from loadtool.results.schema import read_results

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CEILING_S: Final = 40  # the longest run here (smoke, 3 s + 5 s drain) takes ~10 s

TINY: Final = """\
name: tiny-cli
population:
  clients: 2
phases:
  - name: connect
    duration: 300ms
    send_rate: 0
  - name: steady
    duration: 1s
drain: 500ms
behaviour:
  send_rate: 5/s
thresholds:
  - lost == 0
  - duplicates == 0
"""


async def loadtool_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`loadtool run *args` to completion in `cwd` (killed at the ceiling)."""
    with trio.fail_after(CEILING_S):
        return await trio.run_process(
            [str(LOADTOOL), "run", *args],
            cwd=str(cwd),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_passing_run_exits_0_and_writes_results(tmp_path: Path) -> None:
    scenario = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "out"
    done = await loadtool_run(tmp_path, str(scenario), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""  # --quiet: no progress
    results = read_results(out / "results.json")
    assert results["scenario"]["name"] == "tiny-cli"
    assert results["scenario"]["file"] == str(scenario)
    assert results["target"]["embedded"] is True
    totals = results["totals"]
    assert totals["sent"] == 2 * 5 * 1
    assert totals["delivered"] == totals["expected_deliveries"] == 2 * 2 * 5 * 1
    assert (totals["lost"], totals["duplicates"]) == (0, 0)
    assert results["passed"] is True
    stdout = done.stdout.decode()
    assert "  PASS  lost == 0  (value 0)\n" in stdout
    assert "  PASS  duplicates == 0  (value 0)\n" in stdout
    assert stdout.endswith(
        f"PASSED  results: {out / 'results.json'}\nreport: {out / 'report.html'}\n"
    )


async def test_a_failing_threshold_exits_1(tmp_path: Path) -> None:
    scenario = write(
        tmp_path / "strict.yaml", TINY.replace("  - duplicates == 0", "  - latency.p99 < 0.001ms")
    )
    out = tmp_path / "out"
    done = await loadtool_run(tmp_path, str(scenario), "--out", str(out), "--quiet")
    assert done.returncode == 1, done.stderr
    results = read_results(out / "results.json")  # written all the same
    assert [(t["expr"], t["ok"]) for t in results["thresholds"]] == [
        ("lost == 0", True),
        ("latency.p99 < 0.001ms", False),
    ]
    assert results["passed"] is False
    stdout = done.stdout.decode()
    assert "  FAIL  latency.p99 < 0.001ms  (value " in stdout
    assert stdout.endswith(
        f"FAILED  results: {out / 'results.json'}\nreport: {out / 'report.html'}\n"
    )


async def test_a_malformed_scenario_exits_2_before_anything_starts(tmp_path: Path) -> None:
    scenario = write(tmp_path / "typo.yaml", TINY.replace("  clients: 2", "  clents: 2"))
    out = tmp_path / "out"
    done = await loadtool_run(tmp_path, str(scenario), "--out", str(out), "--quiet")
    assert done.returncode == 2, done.stderr
    where = f"{scenario}:3: population.clents: unknown key 'clents'; did you mean 'clients'?"
    assert where in done.stderr.decode()
    assert done.stdout == b""
    assert not out.exists()
    assert not (tmp_path / "reports").exists()


async def test_an_unreachable_target_exits_3(tmp_path: Path) -> None:
    scenario = write(tmp_path / "tiny.yaml", TINY)
    url = f"ws://127.0.0.1:{closed_port()}/"
    out = tmp_path / "out"
    done = await loadtool_run(
        tmp_path, str(scenario), "--target", url, "--out", str(out), "--quiet"
    )
    assert done.returncode == 3, done.stderr
    stderr = done.stderr.decode()
    assert f"Error: {url} is unreachable" in stderr
    assert "Traceback" not in stderr
    assert done.stdout == b""
    assert not (out / "results.json").exists()


async def test_the_shipped_smoke_scenario_passes(tmp_path: Path) -> None:
    scenario = REPO_ROOT / "scenarios" / "smoke.yaml"
    out = tmp_path / "out"
    done = await loadtool_run(
        tmp_path, str(scenario), "--duration", "3s", "--out", str(out), "--quiet"
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    results = read_results(out / "results.json")
    assert results["scenario"]["name"] == "smoke"
    totals = results["totals"]
    assert totals["connects"] == 10
    assert totals["sent"] > 0
    assert totals["received_expected"] == totals["expected_deliveries"] > 0
    assert (totals["lost"], totals["duplicates"]) == (0, 0)
    assert [t["expr"] for t in results["thresholds"]] == [
        "lost == 0",
        "duplicates == 0",
        "latency.p99 < 250ms",
    ]
    assert results["passed"] is True
    assert 3 <= results["duration_s"] < 3 + 5 + 5  # 3 s of load, the 5 s drain, goodbyes
