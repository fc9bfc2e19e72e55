"""The page helpers escape every plain string and embed figures as decodable data URIs."""

from __future__ import annotations

import base64
import re

import pytest
from matplotlib.figure import Figure

from loadtool.report.page import (
    Markup,
    banner,
    definitions,
    escape,
    figure_bytes,
    figure_to_data_uri,
    image,
    render_page,
    section,
    table,
)
from loadtool.report.style import new_figure


def _figure() -> Figure:
    fig = new_figure(4, 3)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1, 4, 9], label="y")
    ax.set_xlabel("x")
    return fig


def test_png_data_uri_decodes_to_a_png() -> None:
    uri = figure_to_data_uri(_figure())
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri[len(prefix) :]).startswith(b"\x89PNG\r\n\x1a\n")


def test_svg_data_uri_decodes_to_svg_without_a_date() -> None:
    uri = figure_to_data_uri(_figure(), "svg")
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    svg = base64.b64decode(uri[len(prefix) :]).decode()
    assert "<svg" in svg
    assert "<dc:date>" not in svg


def test_same_figure_same_png_bytes() -> None:
    assert figure_bytes(_figure()) == figure_bytes(_figure())


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="png or svg"):
        figure_bytes(_figure(), "jpg")  # type: ignore[arg-type]


def test_plain_strings_are_escaped_markup_is_not() -> None:
    page = render_page(
        "run <script>",
        [
            banner("saturated & <slow>", "warn"),
            section(
                "Summary",
                table(["name", "value"], [["<img>", Markup("<b>7</b>")]], numeric=[1]),
                definitions([("scenario", "a\"b'c")]),
                "plain <i>text</i>",
            ),
        ],
        subtitle="sub <x>",
    )
    assert "<script>" not in page
    assert "run &lt;script&gt;" in page
    assert "saturated &amp; &lt;slow&gt;" in page
    assert "<td>&lt;img&gt;</td>" in page
    assert '<td class="num"><b>7</b></td>' in page
    assert "a&quot;b&#x27;c" in page
    assert "<p>plain &lt;i&gt;text&lt;/i&gt;</p>" in page
    assert "sub &lt;x&gt;" in page
    assert page.startswith("<!DOCTYPE html>")
    assert "<link" not in page
    assert "http" not in page.split("<body>")[1]


def test_image_quotes_its_attributes() -> None:
    html = image("data:image/png;base64,AAAA", alt='a "quoted" alt', caption="c", anchor="f1")
    assert re.fullmatch(
        r'<figure id="f1"><img src="data:image/png;base64,AAAA" '
        r'alt="a &quot;quoted&quot; alt"><figcaption>c</figcaption></figure>',
        html,
    )


def test_escape_leaves_markup_alone() -> None:
    assert escape(Markup("<b>")) == "<b>"
    assert escape("<b>") == "&lt;b&gt;"
