"""Server-rendered SVG charts for the console: a pure function from series to markup.

Why SVG made on the server rather than a charting library: the pages run no inline script and load
nothing from elsewhere (console/web.py's CSP), work without JavaScript, and a screen reader needs the
figures themselves. Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` naming its
totals, followed by the figures as a table (in a ``<details>``): the same numbers, readable and
copyable. Colours come from CSS classes (``account.css``: ``.s0`` … ``.s6``), never inline styles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
#: Room for the axis labels: left, right, top, bottom.
PAD_L, PAD_R, PAD_T, PAD_B = 44, 8, 10, 26


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _fmt(n: float) -> str:
    return f"{n:g}" if n != int(n) else f"{int(n):,}"


def _ceiling(top: float) -> float:
    """A round top for the y axis: 1, 2 or 5 times a power of ten, at least ``top``."""
    if top <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= top:
        step *= 10
    for m in (1, 2, 5, 10):
        if step * m >= top:
            return step * m
    return step * 10


def chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    kind: str = "line",
    unit: str = "",
) -> Markup:
    """A line (``kind="line"``) or grouped bar (``kind="bar"``) chart of ``series`` over ``labels``,
    with its figures as a table. Every series has one value per label."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name} has {len(s.values)} values for {len(labels)} labels")
    # An id from the title: the same input gives the same markup (titles differ within a page).
    cid = "chart-" + hashlib.sha256(title.encode()).hexdigest()[:10]
    top = _ceiling(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    count = max(len(labels), 1)

    def y(v: float) -> float:
        return PAD_T + plot_h - (v / top) * plot_h

    totals = ", ".join(f"{s.name} {_fmt(sum(s.values))}" for s in series)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">Totals: {escape(totals)}{escape(unit)}. '
        "The figures are in the table below.</desc>",
    ]
    # Grid lines and y labels at 0, half and the top.
    for frac in (0.0, 0.5, 1.0):
        gy = y(top * frac)
        parts.append(f'<line class="grid" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{PAD_L - 4}" y="{gy + 4:.1f}" text-anchor="end">{_fmt(top * frac)}</text>'
        )
    # At most about eight x labels, evenly spaced.
    every = max(1, -(-count // 8))
    slot = plot_w / count
    for i, label in enumerate(labels):
        if i % every == 0:
            x = PAD_L + slot * (i + 0.5)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    if kind == "bar":
        width = slot * 0.8 / max(len(series), 1)
        for k, s in enumerate(series):
            for i, v in enumerate(s.values):
                if v <= 0:
                    continue
                x = PAD_L + slot * i + slot * 0.1 + width * k
                parts.append(
                    f'<rect class="s{k % 7}" x="{x:.1f}" y="{y(v):.1f}" width="{width:.1f}" '
                    f'height="{PAD_T + plot_h - y(v):.1f}"><title>{escape(s.name)} {escape(labels[i])}: '
                    f"{_fmt(v)}</title></rect>"
                )
    else:
        for k, s in enumerate(series):
            points = " ".join(f"{PAD_L + slot * (i + 0.5):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
            parts.append(f'<polyline class="line s{k % 7}" points="{points}"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="key s{k % 7}" aria-hidden="true"></span>{escape(s.name)}</li>'
        for k, s in enumerate(series)
    )
    head = "".join(f'<th scope="col" class="num">{escape(s.name)}</th>' for s in series)
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th>'
        + "".join(f'<td class="num">{_fmt(s.values[i])}</td>' for s in series)
        + "</tr>"
        for i, label in enumerate(labels)
    )
    table = (
        f'<details class="figures"><summary>Figures of “{escape(title)}”</summary><div class="table-wrap">'
        f'<table><thead><tr><th scope="col">Period</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
        "</div></details>"
    )
    return Markup(
        f'<figure class="chart" id="{cid}">{"".join(parts)}'
        f'<figcaption><span class="chart-title" aria-hidden="true">{escape(title)}</span>'
        f'<ul class="legend">{legend}</ul></figcaption>{table}</figure>'
    )
