"""Writing a run report: draw every figure, save PNG (and SVG on request), write
report.html. The one module of the run report that touches files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from .figures import FIGURES
from .page import FigureFormat, data_uri, figure_bytes
from .runpage import RenderedFigure, run_report_html
from .runs import Run

REPORT_NAME = "report.html"
_NO_RECONNECTS = "No client reconnected in this run, so there is no reconnect time to show."


@attrs.frozen(kw_only=True)
class ReportFiles:
    """What `write_run_report` wrote."""

    html: Path
    figures: tuple[Path, ...]


def _write(path: Path, data: bytes) -> None:
    """Atomically (temp file + rename): a reader never sees half a file."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def write_run_report(
    runs: Sequence[Run], out_dir: str | os.PathLike[str], *, svg: bool = False
) -> ReportFiles:
    """Draw the figures of `runs` into `out_dir` (<name>.png, and <name>.svg when `svg`)
    and write `out_dir/report.html` with every figure embedded. Blocking file I/O.

    Raises:
        ValueError: no runs.
        OSError: the folder or a file cannot be written.
    """
    if not runs:
        raise ValueError("a report needs at least one results file")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats: tuple[FigureFormat, ...] = ("png", "svg") if svg else ("png",)
    rendered: list[RenderedFigure] = []
    written: list[Path] = []
    for spec in FIGURES:
        fig = spec.draw(runs)
        if fig is None:
            rendered.append(RenderedFigure(spec=spec, uri=None, why_missing=_NO_RECONNECTS))
            continue
        png = b""
        for fmt in formats:
            data = figure_bytes(fig, fmt)
            path = out / f"{spec.name}.{fmt}"
            _write(path, data)
            written.append(path)
            if fmt == "png":
                png = data
        rendered.append(RenderedFigure(spec=spec, uri=data_uri(png, "image/png")))
    html_path = out / REPORT_NAME
    _write(html_path, run_report_html(runs, rendered).encode("utf-8"))
    return ReportFiles(html=html_path, figures=tuple(written))
