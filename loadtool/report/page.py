"""Self-contained HTML pages: inline CSS, figures as data URIs, no script, no external asset.

A report page must open from a file, offline, years later, and mean the same thing: so
everything it shows lives inside the one file. The helpers here build escaped fragments
(`Markup`, text that is already HTML) and `render_page` wraps them in a document. Any
plain `str` handed to a helper is escaped; only `Markup` passes through unchanged, so a
scenario name or a close reason cannot inject markup. Used by the run report
(`loadtool report`) and the capacity report (`loadtool capacity`).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

from matplotlib.figure import Figure

FigureFormat = Literal["png", "svg"]
BannerKind = Literal["ok", "warn", "fail"]

PNG_DPI: Final = 110  # dots per inch: a 9.6 x 4.2 in figure is ~1050 x 460 px
_MIME: Final[Mapping[str, str]] = {"png": "image/png", "svg": "image/svg+xml"}
# PNG and SVG writers embed a creation date and software version by default; without
# them the same figure gives the same bytes (stable example reports in the repository).
_METADATA: Final[Mapping[str, Mapping[str, None]]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
}

_STYLE: Final = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1120px; padding: 1.2em 1.5em 3em; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.5em; margin: .2em 0 .1em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; padding-bottom: .2em;
     border-bottom: 1px solid #d0d7de; }
.meta { color: #59636e; font-size: .9em; }
.banner { padding: .7em 1em; border-radius: 6px; margin: .8em 0; font-weight: 600; }
.banner.ok { background: #dafbe1; border: 1px solid #1a7f37; color: #116329; }
.banner.warn { background: #fff8c5; border: 1px solid #bf8700; color: #7d4e00; }
.banner.fail { background: #ffebe9; border: 1px solid #cf222e; color: #a40e26; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .3em .65em; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.pass td.verdict { color: #1a7f37; font-weight: 600; }
tr.fail td.verdict { color: #cf222e; font-weight: 600; }
tr.warn td.verdict { color: #9a6700; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content auto; gap: .15em 1em; margin: .4em 0; }
dt { color: #59636e; }
dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #59636e; font-size: .9em; margin-top: .3em; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .92em; }
nav a { margin-right: .9em; }
"""


class Markup(str):
    """Text that is already HTML: helpers insert it as is (everything else is escaped)."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """`value` as HTML text; `Markup` is returned unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[object], sep: str = "\n") -> Markup:
    """Fragments joined (each escaped unless it is `Markup`)."""
    return Markup(sep.join(escape(part) for part in parts))


def figure_bytes(fig: Figure, fmt: FigureFormat = "png") -> bytes:
    """The figure rendered as PNG or SVG bytes (Agg for PNG; no pyplot, no global state).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in _MIME:
        raise ValueError(f"figure format must be png or svg, got {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=dict(_METADATA[fmt]))
    return buffer.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    """`data:<mime>;base64,...` for embedding `data` in a page."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_to_data_uri(fig: Figure, fmt: FigureFormat = "png") -> str:
    """The figure as a data URI for an <img src> (PNG by default, SVG on request)."""
    return data_uri(figure_bytes(fig, fmt), _MIME[fmt])


def image(src: str, *, alt: str, caption: object = None, anchor: str | None = None) -> Markup:
    """A <figure> holding one image (`src` a data URI) with alt text and a caption."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption is not None else ""
    return Markup(f'<figure{ident}><img src="{escape(src)}" alt="{escape(alt)}">{cap}</figure>')


def banner(text: object, kind: BannerKind = "warn") -> Markup:
    """A coloured box for what a reader must see first (a saturated generator, a failure)."""
    return Markup(f'<div class="banner {kind}" role="status">{escape(text)}</div>')


def paragraph(text: object, *, css: str | None = None) -> Markup:
    klass = f' class="{escape(css)}"' if css else ""
    return Markup(f"<p{klass}>{escape(text)}</p>")


def definitions(pairs: Iterable[tuple[object, object]]) -> Markup:
    """A <dl> of (term, description) pairs: the run's scenario, target, and so on."""
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs)
    return Markup(f"<dl>{items}</dl>")


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    row_classes: Sequence[str | None] | None = None,
    verdict_column: int | None = None,
) -> Markup:
    """A <table>. Columns whose index is in `numeric` are right-aligned; `row_classes`
    (e.g. "pass"/"fail"/"warn") colour the `verdict_column` cell of each row."""
    right = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body: list[str] = []
    for i, row in enumerate(rows):
        css = row_classes[i] if row_classes is not None and i < len(row_classes) else None
        cells = []
        for j, cell in enumerate(row):
            classes = (["num"] if j in right else []) + (["verdict"] if j == verdict_column else [])
            klass = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{klass}>{escape(cell)}</td>")
        tr = f'<tr class="{escape(css)}">' if css else "<tr>"
        body.append(f"{tr}{''.join(cells)}</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def section(title: object, *parts: object, anchor: str | None = None) -> Markup:
    """An <h2> heading and its content (plain `str` parts become paragraphs of text)."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    body = "\n".join(part if isinstance(part, Markup) else paragraph(part) for part in parts)
    return Markup(f"<section{ident}>\n<h2>{escape(title)}</h2>\n{body}\n</section>")


def render_page(
    title: str, sections: Sequence[object], *, subtitle: object = None, lang: str = "en"
) -> str:
    """A whole HTML document: <h1> title, an optional subtitle line, then `sections`
    (Markup fragments, e.g. from `section`/`banner`; plain strings become paragraphs)."""
    sub = f'<p class="meta">{escape(subtitle)}</p>\n' if subtitle is not None else ""
    body = "\n".join(part if isinstance(part, Markup) else paragraph(part) for part in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{sub}{body}\n</body>\n</html>\n"
    )
