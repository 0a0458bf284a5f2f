"""console/charts.py: an SVG chart a screen reader can read, with its figures as a table."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from sesame.console.charts import Series, chart


def test_a_line_chart_is_an_image_with_a_title_totals_and_its_figures() -> None:
    series = [Series("Sends", [1, 0, 4]), Series("Bounces", [0, 0, 1])]
    html = str(chart("Sends per hour", ["06:00", "07:00", "08:00"], series))
    svg = ET.fromstring(re.search(r"<svg.*</svg>", html, re.S).group(0))  # type: ignore[union-attr]
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.get("role") == "img"
    title, desc = svg.find(f"{ns}title"), svg.find(f"{ns}desc")
    assert title is not None and title.text == "Sends per hour"
    assert desc is not None and "Sends 5, Bounces 1" in (desc.text or "")
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert len(svg.findall(f"{ns}polyline")) == 2
    # The same figures in a table, a row per period.
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>((?:<td class="num">\d+</td>)+)</tr>', html)
    assert [(label, re.findall(r">(\d+)<", cells)) for label, cells in rows] == [
        ("06:00", ["1", "0"]), ("07:00", ["0", "0"]), ("08:00", ["4", "1"])
    ]  # fmt: skip


def test_bars_escaping_and_sameness() -> None:
    args = ("A <b>&", ["x<y"], [Series("s&t", [3])])
    html = str(chart(*args, kind="bar"))
    assert "<b>" not in html and "A &lt;b&gt;&amp;" in html and "x&lt;y" in html and "s&amp;t" in html
    assert html.count("<rect") == 1
    assert html == str(chart(*args, kind="bar"))  # a pure function: the same input, the same markup
    ET.fromstring(re.search(r"<svg.*</svg>", html, re.S).group(0))  # type: ignore[union-attr]


def test_empty_and_mismatched_series() -> None:
    html = str(chart("Nothing yet", ["a", "b"], [Series("Sends", [0, 0])]))
    assert ">1</text>" in html  # an empty chart still has an axis, 0 to 1
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        chart("Bad", ["a", "b", "c"], [Series("Sends", [1, 2])])
