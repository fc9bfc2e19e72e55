"""The results files a report draws, each with the short label its curves carry in legends.

Several files overlay their curves (before/after a change), so each needs a name that
tells it apart: the file's stem when the stems differ (`before.json`, `after.json`), else
its folder (`reports/fanout-20261129T0800Z/results.json`), else the run id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..results.schema import read_results


@attrs.frozen(kw_only=True)
class Run:
    """One results document (validated) and the label its curves carry."""

    label: str
    results: Mapping[str, Any] = attrs.field(eq=False, repr=False)
    path: Path | None = None

    @property
    def policy(self) -> str | None:
        """The clients' reconnect back-off policy, when the file records it."""
        reconnect = self.results["scenario"].get("reconnect")
        return None if reconnect is None else str(reconnect["policy"])


def labels_for(paths: Sequence[Path], run_ids: Sequence[str]) -> list[str]:
    """One distinct label per file: stems, else folder names, else run ids, else numbers."""
    candidates = (
        [p.stem for p in paths],
        [p.parent.name or p.stem for p in paths],
        [f"{p.parent.name}/{p.stem}" for p in paths],
        list(run_ids),
    )
    for labels in candidates:
        if all(labels) and len(set(labels)) == len(labels):
            return labels
    return [f"{i}: {run_id}" for i, run_id in enumerate(run_ids, start=1)]


def label_runs(items: Sequence[tuple[Path | None, Mapping[str, Any]]]) -> list[Run]:
    """Runs labelled by `labels_for` (files without a path are named by their run id)."""
    paths = [p if p is not None else Path(str(r["run_id"])) for p, r in items]
    labels = labels_for(paths, [str(r["run_id"]) for _, r in items])
    return [
        Run(label=label, results=results, path=path)
        for label, (path, results) in zip(labels, items, strict=True)
    ]


def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[Run]:
    """Read and validate each results file, then label them. Blocking file I/O.

    Raises:
        ResultsError: a file is unreadable or invalid (the message names the file and key).
    """
    items: list[tuple[Path | None, Mapping[str, Any]]] = [(Path(p), read_results(p)) for p in paths]
    return label_runs(items)
