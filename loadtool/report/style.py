"""Figures that look alike across reports: one size, one palette, the Agg canvas attached.

Each figure is a `matplotlib.figure.Figure` with its own `FigureCanvasAgg`: no pyplot, no
global backend switch, no global figure registry. Reports can be drawn in several
processes at once, or in several threads as long as each thread draws its own figures
(matplotlib objects themselves are not thread-safe).
"""

from __future__ import annotations

from typing import Final

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_IN: Final = 9.6  # inches; at page.PNG_DPI about 1050 px, the page's content width
HEIGHT_IN: Final = 4.2  # inches
# Colour-blind-safe (Okabe-Ito); curves of the Nth results file take the Nth colour.
PALETTE: Final = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
GRID_COLOUR: Final = "#d0d7de"
GRID_WIDTH: Final = 0.6  # points


def new_figure(width_in: float = WIDTH_IN, height_in: float = HEIGHT_IN) -> Figure:
    """An empty figure drawn by Agg (set explicitly here, never through pyplot)."""
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def colour(index: int) -> str:
    """The palette colour of the `index`-th series (wraps around)."""
    return PALETTE[index % len(PALETTE)]
