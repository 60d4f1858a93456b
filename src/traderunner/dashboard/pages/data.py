"""Data: what the store holds (symbols, timeframes, ranges, counts) and the holes in a series.

The table is the ``series`` summary (one query); the gap report of the chosen series loads its
bars and runs the same gap finder as ``traderunner data gaps``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from dash import Input, Output, dcc, html, no_update

from traderunner.dashboard import components as ui
from traderunner.dashboard.pages import Page
from traderunner.dashboard.readmodels import market as rm
from traderunner.errors import TraderunnerError

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

GAPS_SHOWN = 500


def _short(ns: int | None) -> str:
    if ns is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d")


def _kpis(summary: rm.StoreSummary) -> list[Any]:
    return [
        ui.kpi("Series", f"{summary.series:,}", " · ".join(summary.timeframes) or "none"),
        ui.kpi("Symbols", f"{summary.symbols:,}"),
        ui.kpi("Bars", f"{summary.bars:,}"),
        ui.kpi("Range", f"{_short(summary.first_ns)}", f"to {_short(summary.last_ns)}"),
        ui.kpi(
            "Synthetic",
            f"{summary.synthetic:,}",
            "generated prices, labelled" if summary.synthetic else "series of market data only",
            tone="warn" if summary.synthetic else "",
        ),
    ]


_COLUMNS: list[dict[str, Any]] = [
    {"field": "symbol", "pinned": "left", "minWidth": 130},
    {"field": "timeframe", "headerName": "tf", "maxWidth": 90},
    {"field": "source"},
    {
        "field": "bars",
        "type": "numericColumn",
        "valueFormatter": {"function": "d3.format(',')(params.value)"},
    },
    {"field": "first", "headerName": "first bar (UTC)"},
    {"field": "last", "headerName": "last bar (UTC)"},
    {"field": "days", "type": "numericColumn"},
    {"field": "version", "type": "numericColumn", "maxWidth": 110},
]


def layout(ctx: DashboardContext) -> Any:
    series = ctx.store.candles.list_series()
    rows = rm.series_rows(series)
    summary = rm.summarize(series)
    if not rows:
        body: list[Any] = [
            ui.card(
                "Stored series",
                ui.empty(
                    "The store holds no candles yet.",
                    "Load some with 'traderunner data demo', 'traderunner data import FILE' "
                    "or 'traderunner data fetch --provider eodhd'.",
                ),
            )
        ]
    else:
        options = [{"label": f"{r['symbol']} · {r['timeframe']}", "value": r["id"]} for r in rows]
        body = [
            ui.card(
                "Stored series",
                ui.grid("data-series-grid", _COLUMNS, rows, row_id="id"),
                subtitle="click a row for its gap report",
            ),
            ui.card(
                "Gaps",
                # The first series' report is built with the page (no second round trip);
                # picking another one runs the callback.
                dcc.Loading(
                    html.Div(_detail(ctx, rows[0]["id"]), id="data-detail"),
                    type="dot",
                    color=ui.ACCENT,
                ),
                subtitle="US equity sessions, 09:30-16:00 New York; holidays are not known",
                tools=dcc.Dropdown(
                    id="data-series",
                    options=options,
                    value=rows[0]["id"],
                    clearable=False,
                    className="select",
                ),
            ),
        ]
    return html.Div(
        [
            ui.page_header(
                "Data",
                "Candles in the store: what is there, and what is missing.",
            ),
            html.Div(_kpis(summary), className="kpis", id="data-kpis"),
            *body,
        ],
        className="page",
        id="page-data",
    )


def _counts_figure(detail: rm.SeriesDetail) -> go.Figure:
    counts = detail.counts
    intraday = detail.info.timeframe.is_intraday
    colours = [
        ui.GOOD if not intraday or bars >= expected else ui.WARN
        for bars, expected in zip(counts.bars, counts.expected, strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=list(counts.labels),
            y=list(counts.bars),
            marker_color=colours,
            name="bars",
            hovertemplate="%{x}: %{y} bars<extra></extra>",
        )
    )
    missing = detail.report.missing_sessions
    if missing:
        full = max(counts.expected, default=0) or max(counts.bars, default=0)
        fig.add_trace(
            go.Bar(
                x=list(missing),
                y=[full] * len(missing),
                width=[0.8 * 86_400_000] * len(missing),  # ms on a date axis: most of a day
                name="missing session",
                marker={"color": "rgba(248, 81, 73, 0.25)", "line": {"color": ui.BAD, "width": 1}},
                hovertemplate="%{x}: no bars<extra>missing session</extra>",
            )
        )
    if intraday and counts.expected:
        fig.add_trace(
            go.Scatter(
                x=list(counts.labels),
                y=list(counts.expected),
                mode="lines",
                name="a full session",
                line={"color": ui.MUTED, "dash": "dot", "width": 1.5, "shape": "hv"},
            )
        )
    fig.update_layout(barmode="overlay", bargap=0.15)
    if intraday and counts.labels:
        # Whole days on the axis (Plotly would put ticks at noon for a short range).
        span_days = (counts.labels[-1] - counts.labels[0]).days + 1
        fig.update_xaxes(tickformat="%b %d", dtick=86_400_000 * max(1, span_days // 10))
    fig.update_yaxes(title_text="bars per session" if intraday else "bars per month")
    return ui.figure_layout(fig, height=240)


def _detail(ctx: DashboardContext, value: str) -> Any:
    parsed = rm.parse_series_id(value)
    if parsed is None:
        return ui.empty("choose a series")
    symbol, timeframe = parsed
    try:
        detail = rm.series_detail(ctx.store, symbol, timeframe)
    except TraderunnerError as exc:
        return ui.empty(str(exc))
    if detail is None:
        return ui.empty(f"{symbol} {timeframe.value} is no longer in the store")
    report = detail.report
    runs = report.missing_runs()
    kpis = [
        ui.kpi("Sessions checked", f"{report.sessions_checked:,}"),
        ui.kpi(
            "Missing sessions",
            f"{len(report.missing_sessions):,}",
            "often a holiday" if report.missing_sessions else "",
            tone="warn" if report.missing_sessions else "good",
        ),
        ui.kpi(
            "Gaps in sessions",
            f"{len(report.gaps):,}",
            f"{report.missing_bars:,} bars missing",
            tone="warn" if report.gaps else "good",
        ),
        ui.kpi(
            "Duplicates",
            f"{len(report.duplicates):,}",
            tone="bad" if report.duplicates else "good",
        ),
        ui.kpi("Outside session", f"{report.outside_session:,}", "pre- and post-market bars"),
    ]
    gap_rows = [
        {
            "kind": "gap",
            "session": g.session.isoformat(),
            "from": _utc(g.start_ns),
            "to": _utc(g.end_ns),
            "bars": g.bars,
        }
        for g in report.gaps[:GAPS_SHOWN]
    ] + [
        {
            "kind": "missing sessions",
            "session": a.isoformat() if a == b else f"{a.isoformat()} .. {b.isoformat()}",
            "from": "",
            "to": "",
            "bars": None,
        }
        for a, b in runs[:GAPS_SHOWN]
    ]
    columns: list[dict[str, Any]] = [
        {"field": "kind", "maxWidth": 170},
        {"field": "session", "minWidth": 200},
        {"field": "from", "headerName": "first missing bar (UTC)"},
        {"field": "to", "headerName": "last missing bar (UTC)"},
        {"field": "bars", "type": "numericColumn", "maxWidth": 110},
    ]
    table = (
        ui.grid("data-gaps-grid", columns, gap_rows, height=min(360, 50 + 33 * len(gap_rows)))
        if gap_rows
        else ui.empty("No gaps: every weekday session in the range has all its bars.")
    )
    return html.Div(
        [
            html.Div(kpis, className="kpis compact"),
            ui.chart("data-counts", _counts_figure(detail)),
            table,
        ],
        id="data-detail-body",
    )


def _utc(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def register(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(
        Output("data-detail", "children"),
        Input("data-series", "value"),
        prevent_initial_call=True,
    )
    def show_detail(value: str | None) -> Any:
        return _detail(ctx, value or "")

    @app.callback(
        Output("data-series", "value"),
        Input("data-series-grid", "cellClicked"),
        prevent_initial_call=True,
    )
    def pick_row(cell: dict[str, Any] | None) -> Any:
        row_id = (cell or {}).get("rowId")
        return row_id if row_id else no_update


PAGE = Page(
    path="/data",
    title="Data",
    glyph="◫",
    summary="symbols, ranges, gaps",
    layout=layout,
    register=register,
)
