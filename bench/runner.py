"""The shared runner: alternation, medians, ratios, slopes, windows, and the output files.

Everything above `# --- output` is pure (no clock, no files) and tested in tests/bench/.
Each bench module measures; this module decides the order of runs and how figures are
summarised, so that every comparison in bench/ is reported the same way.
"""

from __future__ import annotations

import itertools
import json
import math
import platform
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

# --- pure ------------------------------------------------------------------------------


def alternation(variants: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """(round, variant) in the order to run them: A B A B ..., one of each per round.

    Alternating within a round means slow drift on a shared machine (another job starting,
    a thermal change) hits every variant alike instead of the one that ran last."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not variants:
        raise ValueError("no variants to alternate")
    return [(r, v) for r in range(rounds) for v in variants]


def median(values: Iterable[float | None]) -> float | None:
    """Median of the measured values (None = not measured); None when there are none."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(kept) if kept else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (units of y per unit of x). Needs 2+ distinct xs."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} xs but {len(ys)} ys")
    if len(xs) < 2:
        raise ValueError("a slope needs at least two points")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("a slope needs at least two distinct xs")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def slope_per_hour(seconds: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys sampled at `seconds`, per hour."""
    return slope(seconds, ys) * 3600.0


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Median of the slopes between every pair of points: a slope that a few bursts (another
    job on a shared machine) cannot tilt, reported next to the least-squares one."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} xs but {len(ys)} ys")
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    if not slopes:
        raise ValueError("a slope needs at least two distinct xs")
    return statistics.median(slopes)


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """y at x on the piecewise-linear curve through `points` (sorted by x), clamped at the
    ends. Used to read a cumulative counter (CPU seconds) at a moment between samples."""
    if not points:
        raise ValueError("no points to interpolate")
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def active_window(
    points: Sequence[tuple[float, float]], *, level: float = 0.5, trim: float = 0.2
) -> tuple[int, int] | None:
    """Indexes (i, j) of the steady part of a cumulative counter sampled over time.

    The active span runs from the first to the last interval whose rate is at least
    `level` times the 90th-percentile interval rate; `trim` of it is cut from each end, so
    the start-up, the ramp and the tail are left out. None when nothing moved."""
    if len(points) < 3:
        return None
    rates = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        rates.append((y1 - y0) / (x1 - x0) if x1 > x0 else 0.0)
    ranked = sorted(rates)
    top = ranked[min(len(ranked) - 1, int(0.9 * len(ranked)))]
    if top <= 0:
        return None
    busy = [k for k, r in enumerate(rates) if r >= level * top]
    first, last = busy[0], busy[-1] + 1  # point indexes bounding the busy intervals
    cut = int((last - first) * trim)
    i, j = first + cut, last - cut
    return (i, j) if j > i else (first, last)


@attrs.frozen
class Summary:
    """Median of each variant's per-round values and their ratio (a / b)."""

    metric: str
    a: str
    b: str
    a_median: float | None
    b_median: float | None
    ratio: float | None
    target: float | None = None  # ratio a / b must be >= target (None: no target)

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target


def summarise(
    rounds: Sequence[dict[str, Any]],
    *,
    metric: str,
    a: str,
    b: str,
    target: float | None = None,
) -> Summary:
    """Summary of `metric` over rows {variant, metric...} of the two variants."""
    a_med = median(r.get(metric) for r in rounds if r["variant"] == a)
    b_med = median(r.get(metric) for r in rounds if r["variant"] == b)
    return Summary(metric, a, b, a_med, b_med, ratio(a_med, b_med), target)


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure for a table: thousands separators, `n/a` when not measured."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


# --- output ----------------------------------------------------------------------------

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    import os

    load = os.getloadavg()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import subprocess

    commit = subprocess.run(
        ["git", "-C", str(RESULTS_DIR.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "commit": commit,
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loadavg_at_start": [round(x, 2) for x in load],
    }


@attrs.define
class Output:
    """Where a bench's JSON and chart go, and the common header of every JSON file."""

    out_dir: Path = RESULTS_DIR
    stamp: str = attrs.field(factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d"))
    quiet: bool = False

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def save(
        self,
        name: str,
        payload: dict[str, Any],
        chart: Callable[[Any], None] | None = None,
    ) -> Path:
        """bench/results/<date>-<name>.json (and .png drawn by `chart(figure)`)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{self.stamp}-{name}.json"
        document = {
            "bench": name,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            **payload,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        if chart is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            figure = plt.figure(figsize=(10, 4.5))
            chart(figure)
            figure.tight_layout()
            figure.savefig(path.with_suffix(".png"), dpi=90)
            plt.close(figure)
        self.say(f"saved {path}" + (f" and {path.with_suffix('.png').name}" if chart else ""))
        return path


def summary_rows(summaries: Sequence[Summary], unit: str) -> list[list[str]]:
    """Rows for `table`: metric, both medians, the ratio and the verdict."""
    rows = []
    for s in summaries:
        verdict = "" if s.met is None else ("met" if s.met else f"NOT met (< {s.target}x)")
        rows.append(
            [s.metric, fmt(s.a_median), fmt(s.b_median), fmt(s.ratio) + "x", verdict or "-"]
        )
    return rows
