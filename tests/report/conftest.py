"""Results files made by real runs (tests/report/data/README.md says how), loaded as runs.

Tests that need a variation (a saturated generator, an error, a regression) derive it
from these real files by editing a deep copy, never by writing a document from scratch.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Final

import pytest

from loadtool.report.runs import Run, label_runs
from loadtool.results.schema import read_results

DATA: Final = Path(__file__).parent / "data"
JITTER: Final = DATA / "storm-full-jitter.json"  # passes its thresholds
EXPONENTIAL: Final = DATA / "storm-exponential.json"  # fails latency.p99 < 250ms


def load(path: Path) -> dict[str, Any]:
    return copy.deepcopy(read_results(path))


@pytest.fixture
def jitter() -> dict[str, Any]:
    return load(JITTER)


@pytest.fixture
def exponential() -> dict[str, Any]:
    return load(EXPONENTIAL)


@pytest.fixture
def one_run(jitter: dict[str, Any]) -> list[Run]:
    return label_runs([(JITTER, jitter)])


@pytest.fixture
def two_runs(jitter: dict[str, Any], exponential: dict[str, Any]) -> list[Run]:
    return label_runs([(JITTER, jitter), (EXPONENTIAL, exponential)])
