"""`loadtool report` and `loadtool compare` as commands: files written, exit codes
(0 ok, 1 a regression, 2 an unreadable or invalid file named in the message)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from click.testing import CliRunner

from loadtool.cli import cli
from loadtool.report.figures import FIGURES
from loadtool.results.schema import read_results

DATA: Final = Path(__file__).resolve().parents[1] / "report" / "data"
JITTER: Final = DATA / "storm-full-jitter.json"
EXPONENTIAL: Final = DATA / "storm-exponential.json"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_json(path: Path, doc: Any) -> Path:
    path.write_bytes(orjson.dumps(doc))
    return path


def test_report_next_to_the_results_file(tmp_path: Path) -> None:
    results = shutil.copy(JITTER, tmp_path / "results.json")
    done = invoke("report", str(results))
    assert done.exit_code == 0, done.output
    assert (
        done.output.strip() == f"report: {tmp_path / 'report.html'} ({len(FIGURES)} figure files)"
    )
    html = (tmp_path / "report.html").read_text()
    for spec in FIGURES:
        assert (tmp_path / f"{spec.name}.png").is_file()
        assert f'alt="{spec.title}"' in html


def test_report_of_several_files_with_svg(tmp_path: Path) -> None:
    out = tmp_path / "both"
    done = invoke("report", str(JITTER), str(EXPONENTIAL), "--out", str(out), "--svg")
    assert done.exit_code == 0, done.output
    html = (out / "report.html").read_text()
    assert "storm-full-jitter" in html
    assert "storm-exponential" in html
    assert len(list(out.glob("*.svg"))) == len(FIGURES)


def test_report_names_the_invalid_file(tmp_path: Path) -> None:
    broken = copy.deepcopy(read_results(JITTER))
    del broken["totals"]["lost"]
    bad = write_json(tmp_path / "bad.json", broken)
    done = invoke("report", str(JITTER), str(bad), "--out", str(tmp_path / "out"))
    assert done.exit_code == 2
    assert f"Error: {bad}: totals.lost: missing key" in done.output
    assert not (tmp_path / "out").exists()  # nothing written for bad input
    missing = invoke("report", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "nope.json: cannot read" in missing.output


def test_compare_passes_on_the_same_run(tmp_path: Path) -> None:
    done = invoke("compare", str(JITTER), str(JITTER))
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-1] == "PASSED: no regression beyond 10%"


def test_compare_fails_on_a_regression(tmp_path: Path) -> None:
    worse = copy.deepcopy(read_results(JITTER))
    worse["latency_ms"]["p99"] *= 1.3
    new = write_json(tmp_path / "new.json", worse)
    done = invoke("compare", str(JITTER), str(new))
    assert done.exit_code == 1
    assert "REGRESSION: latency p99 grew 30.0% (limit 10%)" in done.output
    assert invoke("compare", str(JITTER), str(new), "--max-regression", "35%").exit_code == 0


def test_compare_json(tmp_path: Path) -> None:
    worse = copy.deepcopy(read_results(JITTER))
    worse["totals"]["duplicates"] = 2
    new = write_json(tmp_path / "new.json", worse)
    done = invoke("compare", str(JITTER), str(new), "--json")
    assert done.exit_code == 1
    doc = json.loads(done.output)
    assert doc["passed"] is False
    assert doc["regressions"] == ["duplicates"]
    assert doc["base"] == str(JITTER)
    assert doc["new"] == str(new)


def test_compare_names_the_unreadable_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{nope")
    done = invoke("compare", str(JITTER), str(garbage))
    assert done.exit_code == 2
    assert f"Error: {garbage}: not valid JSON" in done.output
    older = copy.deepcopy(read_results(JITTER)) | {"schema_version": 2}
    future = write_json(tmp_path / "future.json", older)
    done = invoke("compare", str(future), str(JITTER))
    assert done.exit_code == 2
    assert f"{future}: schema_version: unsupported version 2" in done.output


@pytest.mark.parametrize("limit", ["10", "ten%", "-5%"])
def test_compare_refuses_a_bad_limit(limit: str) -> None:
    done = CliRunner().invoke(cli, ["compare", str(JITTER), str(JITTER), "--max-regression", limit])
    assert done.exit_code == 2
    assert "--max-regression" in done.output
