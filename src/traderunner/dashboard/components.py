"""The dashboard's building blocks: cards, figures, tables and charts in one look.

Every page builds from these so the product looks like one thing: a dark theme (``assets/
style.css``), AG Grid tables themed to match, Plotly figures on the same colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_ag_grid as dag
import plotly.graph_objects as go
from dash import dcc, html

# The palette, shared with assets/style.css (keep the two in step).
BACKGROUND = "#0d1117"
PANEL = "#151b23"
BORDER = "#2a3441"
TEXT = "#e6edf3"
MUTED = "#8b98a9"
ACCENT = "#4aa8ff"
GOOD = "#3fb950"
WARN = "#d29922"
BAD = "#f85149"
SERIES_COLOURS = (ACCENT, "#b18cff", "#f0883e", GOOD, "#ff7eb6", "#39c5cf")

_GRID_THEME = {
    "function": (
        "themeQuartz.withParams({"
        f"backgroundColor: '{PANEL}', foregroundColor: '{TEXT}', "
        f"headerBackgroundColor: '#1b232d', borderColor: '{BORDER}', "
        f"accentColor: '{ACCENT}', oddRowBackgroundColor: '#18202a', "
        "fontSize: 13, headerFontSize: 12, spacing: 6, wrapperBorderRadius: 8, "
        "browserColorScheme: 'dark'})"
    )
}


def page_header(title: str, subtitle: str, *extra: Any) -> html.Header:
    return html.Header(
        [
            html.Div([html.H1(title), html.P(subtitle, className="muted")]),
            html.Div(list(extra), className="page-header-extra"),
        ],
        className="page-header",
    )


def card(
    title: str, *body: Any, subtitle: str = "", tools: Any = None, **kwargs: Any
) -> html.Section:
    head: list[Any] = [html.H2(title)]
    if subtitle:
        head.append(html.Span(subtitle, className="muted small"))
    header = html.Div(
        [html.Div(head, className="card-title"), html.Div(tools, className="card-tools")],
        className="card-head",
    )
    className = " ".join(["card", kwargs.pop("className", "")]).strip()
    return html.Section([header, *body], className=className, **kwargs)


def kpi(
    label: str, value: str, note: str = "", *, tone: str = "", id: str | None = None
) -> html.Div:
    """One figure tile; ``tone`` is ``good``, ``warn``, ``bad`` or '' (neutral)."""
    attrs: dict[str, Any] = {"className": f"kpi {tone}".strip()}
    if id is not None:
        attrs["id"] = id
    return html.Div(
        [
            html.Div(label, className="kpi-label"),
            html.Div(value, className="kpi-value"),
            html.Div(note, className="kpi-note"),
        ],
        **attrs,
    )


def pill(text: str, tone: str = "") -> html.Span:
    return html.Span(text, className=f"pill {tone}".strip())


def facts(rows: Sequence[tuple[str, Any]]) -> html.Dl:
    """A two-column list of label / value pairs."""
    items: list[Any] = []
    for label, value in rows:
        items.append(html.Dt(label))
        items.append(html.Dd(value))
    return html.Dl(items, className="facts")


def meter(used: float, total: float, *, tone: str = "") -> html.Div:
    """A thin bar: how much of ``total`` is ``used`` (empty when total is 0)."""
    share = 0.0 if total <= 0 else max(0.0, min(1.0, used / total))
    if not tone:
        tone = "bad" if share >= 0.95 else "warn" if share >= 0.8 else "good"
    return html.Div(
        html.Div(className=f"meter-fill {tone}", style={"width": f"{share * 100:.1f}%"}),
        className="meter",
    )


def empty(message: str, hint: str = "") -> html.Div:
    return html.Div(
        [html.P(message), html.P(hint, className="muted small") if hint else None],
        className="empty",
    )


def grid(
    id: str,
    columns: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    *,
    height: int | None = None,
    row_id: str | None = None,
    filter: bool = True,
    **options: Any,
) -> dag.AgGrid:
    """A sortable AG Grid in the dashboard's theme (auto height unless given); column filters
    unless ``filter=False`` (small tables read better without them)."""
    grid_options: dict[str, Any] = {
        "theme": _GRID_THEME,
        "animateRows": False,
        "suppressCellFocus": True,
        **options,
    }
    if height is None:
        grid_options["domLayout"] = "autoHeight"
    extra: dict[str, Any] = {}
    if row_id is not None:
        extra["getRowId"] = f"params.data.{row_id}"
    return dag.AgGrid(
        id=id,
        columnDefs=list(columns),
        rowData=list(rows),
        defaultColDef={"sortable": True, "filter": filter, "resizable": True, "minWidth": 72},
        dashGridOptions=grid_options,
        columnSize="responsiveSizeToFit",
        style={"height": f"{height}px"} if height is not None else {},
        className="grid",
        **extra,
    )


def figure_layout(fig: go.Figure, *, height: int = 260, legend: bool = True) -> go.Figure:
    """Apply the dashboard's look to a Plotly figure."""
    fig.update_layout(
        template="plotly_dark",
        height=height,
        margin={"l": 48, "r": 16, "t": 12, "b": 36},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": TEXT, "size": 12},
        showlegend=legend,
        legend={"orientation": "h", "y": 1.12, "x": 0, "bgcolor": "rgba(0,0,0,0)"},
        hoverlabel={"bgcolor": PANEL, "bordercolor": BORDER, "font": {"color": TEXT}},
    )
    fig.update_xaxes(gridcolor=BORDER, zerolinecolor=BORDER, linecolor=BORDER)
    fig.update_yaxes(gridcolor=BORDER, zerolinecolor=BORDER, linecolor=BORDER)
    return fig


def chart(id: str, fig: go.Figure | dict[str, Any] | None = None, **kwargs: Any) -> dcc.Graph:
    """A Plotly graph as tall as its figure (a responsive graph needs a sized box)."""
    figure = fig if fig is not None else figure_layout(go.Figure())
    if isinstance(figure, dict):
        height = int(figure.get("layout", {}).get("height") or 260)
    else:
        height = int(figure.layout.height or 260)
    return dcc.Graph(
        id=id,
        figure=figure,
        config={"displayModeBar": False, "responsive": True},
        className="chart",
        style={"height": f"{height}px"},
        **kwargs,
    )


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def window_name(seconds: int) -> str:
    """``60`` -> ``minute``, ``86400`` -> ``day``; anything else as a duration."""
    named = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week"}
    return named.get(int(seconds)) or human_duration(seconds)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def session_breaks(index: Any) -> list[dict[str, Any]]:
    """Plotly ``rangebreaks`` hiding the hours and weekdays the bars never fall on.

    Two patterns found in the data itself, whatever the market's hours or time zone: the
    weekend when no bar falls on a Saturday or Sunday, and the daily closed hours (the longest
    stretch of the day, around the clock, in which no bar opens). Holidays stay as short gaps.
    Patterns rather than one break per night: Plotly's cost grows with points times breaks.
    """
    import numpy as np
    import pandas as pd

    stamps = pd.DatetimeIndex(index)
    if len(stamps) < 3:
        return []
    ns = stamps.asi8
    step_h = float(np.median(np.diff(ns))) / 3.6e12
    breaks: list[dict[str, Any]] = []
    if not np.isin(stamps.dayofweek, (5, 6)).any():
        breaks.append({"bounds": ["sat", "mon"]})
    if step_h >= 12:
        return breaks
    tod = np.unique(np.round((ns % 86_400_000_000_000) / 3.6e12, 4))
    gaps = np.diff(np.r_[tod, tod[0] + 24.0])
    widest = int(np.argmax(gaps))
    if gaps[widest] > 2 * step_h:
        start = (tod[widest] + step_h) % 24.0
        end = tod[(widest + 1) % len(tod)]
        breaks.append({"pattern": "hour", "bounds": [round(start, 4), round(end, 4)]})
    return breaks


def times(values: Any) -> Any:
    """Timestamps as ISO text (``2025-06-02T13:30:00``, UTC) for a Plotly axis.

    Plotly copies and encodes pandas timestamps one Python object at a time (seconds for a
    year of bars); text made by numpy in one call is copied and encoded as one array.
    """
    import numpy as np
    import pandas as pd

    stamps = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_convert(None)
    return np.datetime_as_string(stamps.to_numpy(dtype="datetime64[s]"), unit="s")


_TEMPLATE: dict[str, Any] = {}


def plain_layout(
    *, height: int = 260, legend: bool = True, axes: Sequence[str] = ("xaxis", "yaxis"), **more: Any
) -> dict[str, Any]:
    """:func:`figure_layout`'s look as a plain layout dict, for figures built as dicts.

    A large figure built as ``go.Figure`` spends most of its time in Plotly's validation and
    copies; built as a dict it costs next to nothing, and ``dcc.Graph`` takes either.
    """
    if not _TEMPLATE:
        import plotly.io as pio

        _TEMPLATE.update(pio.templates["plotly_dark"].to_plotly_json())
    layout: dict[str, Any] = {
        "template": _TEMPLATE,
        "height": height,
        "margin": {"l": 48, "r": 16, "t": 12, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": TEXT, "size": 12},
        "showlegend": legend,
        "legend": {"orientation": "h", "y": 1.12, "x": 0, "bgcolor": "rgba(0,0,0,0)"},
        "hoverlabel": {"bgcolor": PANEL, "bordercolor": BORDER, "font": {"color": TEXT}},
    }
    for axis in axes:
        layout[axis] = {"gridcolor": BORDER, "zerolinecolor": BORDER, "linecolor": BORDER}
    for key, value in more.items():
        if key in layout and isinstance(layout[key], dict) and isinstance(value, dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout
