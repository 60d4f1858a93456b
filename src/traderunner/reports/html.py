"""A self-contained HTML report of a run: one file that opens offline, in any browser.

The page holds the run's header (what ran and how), its metric table, the figure (plotly.js is
inlined, so no script is fetched from anywhere) and its trade list or top sweep rows as tables.
Every text from the run is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traderunner.reports.text import format_metric

if TYPE_CHECKING:
    import plotly.graph_objects as go

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
p.what { margin: 0.2em 0; color: #444; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.synthetic { background: #f1c40f; font-weight: bold; padding: 0.1em 0.4em; }
footer { color: #888; font-size: 0.8em; margin-top: 2em; }
"""


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "") -> str:
    """An HTML table of already formatted cells (each escaped here)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metrics_html(portfolio: Mapping[str, Any], per_symbol: Mapping[str, Mapping[str, Any]]) -> str:
    """The metric table: a portfolio column and, with several symbols, one per symbol."""
    symbols = list(per_symbol) if len(per_symbol) > 1 else []
    rows = [
        [
            name,
            format_metric(name, value),
            *(format_metric(name, per_symbol[s].get(name)) for s in symbols),
        ]
        for name, value in portfolio.items()
    ]
    return table_html(["metric", "portfolio", *symbols], rows)


def report(
    *,
    title: str,
    lines: Sequence[str],
    figure: go.Figure,
    sections: Sequence[tuple[str, str]] = (),
    synthetic: Sequence[str] = (),
    footer: str = "",
) -> str:
    """The whole page: ``lines`` under the title, then each ``(heading, html)`` section in
    order, the figure after the first (the metrics), and ``footer``."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="what">{html.escape(line)}</p>' for line in lines]
    if synthetic:
        parts.append(
            f'<p><span class="synthetic">SYNTHETIC data</span> {html.escape(", ".join(synthetic))}'
            ": generated prices, not market data</p>"
        )
    chart = figure.to_html(full_html=False, include_plotlyjs=True, config={"responsive": True})
    for i, (heading, body) in enumerate(sections):
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
        if i == 0:
            parts.append(chart)
    if not sections:
        parts.append(chart)
    if footer:
        parts.append(f"<footer>{html.escape(footer)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
