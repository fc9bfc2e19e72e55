"""`loadtool run` leaves report.html and its figures next to results.json; a report that
cannot be written costs neither results.json nor the run's exit code."""

from __future__ import annotations

from pathlib import Path

from loadtool.report.figures import FIGURES
from loadtool.results.schema import read_results

from .test_run_cli import TINY, loadtool_run, write

# TINY has no reconnects, so its report leaves out the reconnect-time figure.
DRAWN = [spec for spec in FIGURES if spec.name != "reconnect-distribution"]


async def test_a_run_writes_its_report(tmp_path: Path) -> None:
    scenario = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "out"
    done = await loadtool_run(tmp_path, str(scenario), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"report: {out / 'report.html'}" in done.stdout.decode()
    results = read_results(out / "results.json")
    html = (out / "report.html").read_text()
    assert results["run_id"] in html
    assert f'<td class="num">{results["totals"]["sent"]:,}</td>' in html
    for spec in DRAWN:
        assert (out / f"{spec.name}.png").is_file()
        assert f'alt="{spec.title}"' in html
    assert "No client reconnected in this run" in html


async def test_no_report_writes_results_only(tmp_path: Path) -> None:
    scenario = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "out"
    done = await loadtool_run(tmp_path, str(scenario), "--out", str(out), "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    assert (out / "results.json").is_file()
    assert not (out / "report.html").exists()
    assert not list(out.glob("*.png"))


async def test_a_failed_report_keeps_the_results_and_the_verdict(tmp_path: Path) -> None:
    scenario = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)  # report.html cannot be written over a folder
    done = await loadtool_run(tmp_path, str(scenario), "--out", str(out), "--quiet")
    assert done.returncode == 0  # the thresholds passed: the report does not change that
    stderr = done.stderr.decode()
    assert "Warning: report.html was not written" in stderr
    assert f"retry with `loadtool report {out / 'results.json'}`" in stderr
    assert read_results(out / "results.json")["passed"] is True
