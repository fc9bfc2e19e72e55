"""The example reports committed under reports/ stay readable by this loadtool and
consistent with their results files (reports/README.md says how they were made)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from loadtool.report.figures import FIGURES
from loadtool.results.schema import read_results

REPORTS: Final = Path(__file__).resolve().parents[2] / "reports"
EXAMPLES: Final = sorted(p.parent for p in REPORTS.glob("*/results.json"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"fanout", "reconnect-storm"}


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_report_matches_its_results(folder: Path) -> None:
    results = read_results(folder / "results.json")
    html = (folder / "report.html").read_text()
    assert results["run_id"] in html
    assert f"{results['totals']['sent']:,}" in html
    for spec in FIGURES:
        assert (folder / f"{spec.name}.png").is_file() == (f'alt="{spec.title}"' in html)
    assert (folder / "reconnect-distribution.png").is_file() == bool(
        results["reconnect_ms"]["count"]
    )
