"""report.html: one self-contained file that references every figure and holds the
summary values, thresholds and generator health read from the results files."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from loadtool.report import summary
from loadtool.report.figures import FIGURES
from loadtool.report.runpage import RenderedFigure, run_report_html
from loadtool.report.runreport import write_run_report
from loadtool.report.runs import Run, label_runs, labels_for
from loadtool.results.histogram import LatencyHistogram

from .conftest import JITTER

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')


def images(html: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for data, alt in IMG.findall(html)}


def test_report_embeds_every_figure_as_a_png(tmp_path: Path, one_run: list[Run]) -> None:
    files = write_run_report(one_run, tmp_path)
    html = files.html.read_text()
    shown = images(html)
    assert sorted(shown) == sorted(spec.title for spec in FIGURES)
    for spec in FIGURES:
        png = (tmp_path / f"{spec.name}.png").read_bytes()
        assert shown[spec.title] == png  # the embedded image is the written file
        assert png.startswith(b"\x89PNG")
        assert f'id="{spec.name}"' in html
        assert f'href="#{spec.name}"' in html
    assert files.figures == tuple(tmp_path / f"{spec.name}.png" for spec in FIGURES)
    assert not list(tmp_path.glob(".*.tmp"))


def test_svg_on_request(tmp_path: Path, one_run: list[Run]) -> None:
    files = write_run_report(one_run, tmp_path, svg=True)
    for spec in FIGURES:
        assert (tmp_path / f"{spec.name}.svg").read_text().lstrip().startswith("<?xml")
    assert len(files.figures) == 2 * len(FIGURES)


def test_report_is_self_contained(tmp_path: Path, two_runs: list[Run]) -> None:
    html = write_run_report(two_runs, tmp_path).html.read_text()
    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # nothing fetched from anywhere


def test_report_holds_the_summary_values(tmp_path: Path, jitter: dict[str, Any]) -> None:
    html = write_run_report(label_runs([(JITTER, jitter)]), tmp_path).html.read_text()
    totals, latency = jitter["totals"], jitter["latency_ms"]
    for text in (
        jitter["scenario"]["name"],
        jitter["run_id"],
        jitter["target"]["urls"][0],
        jitter["start"],
        f"{totals['sent']:,}",
        f"{totals['delivered']:,} / {totals['expected_deliveries']:,}",
        summary.ms(latency["p50"]),
        summary.ms(latency["p99"]),
        summary.ms(latency["p999"]),
        summary.ms(jitter["reconnect_ms"]["p95"]),
        "full-jitter (base 0.2 s, cap 2 s)",
        f"{jitter['generator']['cpu_s']:.1f} s",
        "dropped 10 of 20 connections",
    ):
        assert text in html, text
    for check in jitter["thresholds"]:
        assert f"<td>{check['expr'].replace('<', '&lt;')}</td>" in html
    assert html.count('<td class="verdict">PASS</td>') == len(jitter["thresholds"])
    assert 'class="banner ok"' in html
    assert f"PASSED: all {len(jitter['thresholds'])} thresholds held" in html


def test_failed_thresholds_are_marked(tmp_path: Path, exponential: dict[str, Any]) -> None:
    html = write_run_report(label_runs([(JITTER, exponential)]), tmp_path).html.read_text()
    failed = [c for c in exponential["thresholds"] if not c["ok"]]
    assert failed  # this fixture broke its latency threshold
    assert html.count('<tr class="fail"><td>') == len(failed)
    assert 'class="banner fail"' in html
    assert f"FAILED: {len(failed)} of {len(exponential['thresholds'])}" in html


def test_a_saturated_generator_is_flagged_at_the_top(
    tmp_path: Path, jitter: dict[str, Any]
) -> None:
    jitter["generator"]["saturated"] = True
    jitter["generator"]["saturation_reasons"] = ["event-loop lag p99 412 ms"]
    html = write_run_report(label_runs([(JITTER, jitter)]), tmp_path).html.read_text()
    after_title = html.split("</h1>", 1)[1]
    first_block = after_title[after_title.index("<div") :]
    assert first_block.startswith('<div class="banner warn"')
    assert "generator was saturated (event-loop lag p99 412 ms)" in first_block.split("</div>")[0]
    assert after_title.index("banner warn") < after_title.index("<section")


def test_text_from_the_results_is_escaped(tmp_path: Path, jitter: dict[str, Any]) -> None:
    jitter["scenario"]["name"] = "<img src=x onerror=alert(1)>"
    html = write_run_report(label_runs([(JITTER, jitter)]), tmp_path).html.read_text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_several_runs_get_a_column_each(tmp_path: Path, two_runs: list[Run]) -> None:
    html = write_run_report(two_runs, tmp_path).html.read_text()
    assert "<th>figure</th><th>storm-full-jitter</th><th>storm-exponential</th>" in html
    for run in two_runs:
        assert summary.ms(run.results["latency_ms"]["p99"]) in html
    assert "2 runs compared" in html


def test_a_run_without_reconnects_says_why_the_figure_is_missing(
    tmp_path: Path, jitter: dict[str, Any]
) -> None:
    jitter["histograms"]["reconnect"] = LatencyHistogram().encode()
    files = write_run_report(label_runs([(JITTER, jitter)]), tmp_path)
    html = files.html.read_text()
    assert "Reconnect time by back-off policy" not in images(html)
    assert "No client reconnected in this run" in html
    assert not (tmp_path / "reconnect-distribution.png").exists()
    assert len(files.figures) == len(FIGURES) - 1


def test_no_runs_no_report(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        write_run_report([], tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        run_report_html([], [RenderedFigure(spec=FIGURES[0], uri=None)])


@pytest.mark.parametrize(
    ("paths", "labels"),
    [
        (["a/before.json", "a/after.json"], ["before", "after"]),
        (["x/results.json", "y/results.json"], ["x", "y"]),
        (["m/x/results.json", "n/x/results.json"], ["r1", "r2"]),
        (["r.json", "r.json"], ["1: r1", "2: r1"]),
    ],
)
def test_labels_tell_files_apart(paths: list[str], labels: list[str]) -> None:
    run_ids = ["r1", "r2"] if labels[0] != "1: r1" else ["r1", "r1"]
    assert labels_for([Path(p) for p in paths], run_ids) == labels
