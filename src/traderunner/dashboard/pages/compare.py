"""Compare: several backtests' equity curves on one chart and their metrics side by side.

``/compare/ID,ID,...`` (what the Runs page's "Compare selected" opens), or pick runs here. Curves
are drawn as growth of 1 (each run's equity over its start value), so runs with different cash
read on one axis; a sweep is not a curve and is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from dash import Input, Output, dcc, html, no_update

from traderunner.dashboard import components as ui
from traderunner.dashboard.pages import Page
from traderunner.dashboard.readmodels import runs as rm
from traderunner.dashboard.web import current_is_admin, current_user
from traderunner.domain.runs import RunKind
from traderunner.reports.text import format_metric, params_text

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

MAX_RUNS = 8


def _label(record: Any) -> str:
    named = f" “{record.name}”" if record.name else ""
    return f"{record.strategy}{named} {params_text(record.params)} · {','.join(record.symbols)}"


def _figure(views: list[rm.RunView]) -> go.Figure:
    fig = go.Figure()
    for i, view in enumerate(views):
        equity = view.frames.get("equity")
        if equity is None or not len(equity):
            continue
        curve = equity.set_index("ts")["equity"]
        start = float(view.record.metrics.get("start_value") or curve.iloc[0] or 1.0)
        step = max(1, len(curve) // 1500)
        shown = curve.iloc[::step] / start
        fig.add_trace(
            go.Scatter(
                x=ui.times(shown.index),
                y=shown.to_numpy(),
                mode="lines",
                name=f"{view.record.id[:8]} {_label(view.record)}"[:70],
                line={"color": ui.SERIES_COLOURS[i % len(ui.SERIES_COLOURS)], "width": 1.6},
            )
        )
        if i == 0:
            fig.update_xaxes(rangebreaks=ui.session_breaks(curve.index))
    fig.update_yaxes(title_text="growth of 1")
    fig.update_layout(hovermode="x unified", legend={"y": -0.18, "orientation": "h"})
    return ui.figure_layout(fig, height=420)


def _table(views: list[rm.RunView]) -> Any:
    columns: list[dict[str, Any]] = [{"field": "metric", "pinned": "left", "minWidth": 150}]
    columns += [
        {
            "field": v.record.id,
            "headerName": f"{v.record.id[:8]} {v.record.strategy}",
            "type": "numericColumn",
        }
        for v in views
    ]
    rows: list[dict[str, Any]] = [
        {"metric": "parameters", **{v.record.id: params_text(v.record.params) for v in views}},
        {"metric": "symbols", **{v.record.id: ", ".join(v.record.symbols) for v in views}},
        {
            "metric": "period",
            **{v.record.id: str(v.record.summary.get("period") or "") for v in views},
        },
    ]
    for name, label in rm.HEADLINE:
        rows.append(
            {
                "metric": label,
                **{v.record.id: format_metric(name, v.record.metrics.get(name)) for v in views},
            }
        )
    return ui.grid("compare-grid", columns, rows, filter=False)


def _body(ctx: DashboardContext, ids: list[str]) -> Any:
    views = rm.equity_curves(ctx.store, ids, user=current_user(), admin=current_is_admin())
    if len(views) < 1:
        return ui.empty("Choose two or more backtests above.")
    return html.Div(
        [
            ui.card(
                "Equity curves",
                ui.chart("compare-equity", _figure(views)),
                subtitle="each run's equity over its start value",
            ),
            ui.card("Metrics side by side", _table(views)),
        ],
        className="page-body",
        id="compare-body",
    )


def _page(ctx: DashboardContext, ids: list[str]) -> Any:
    found = rm.list_runs(
        ctx.store, user=current_user(), admin=current_is_admin(), kind=RunKind.BACKTEST, limit=200
    )
    options = [
        {"label": f"{r.id[:8]} · {_label(r)} · {r.created_at:%m-%d %H:%M}", "value": r.id}
        for r in found.items
    ]
    known = {o["value"] for o in options}
    chosen = [i for i in ids if i in known][:MAX_RUNS]
    return html.Div(
        [
            ui.page_header(
                "Compare", "Several backtests on one chart, their metrics side by side."
            ),
            ui.card(
                "Runs",
                dcc.Dropdown(
                    id="compare-runs",
                    options=options,
                    value=chosen,
                    multi=True,
                    className="select",
                    placeholder="choose backtests",
                ),
                subtitle=f"up to {MAX_RUNS}",
            ),
            html.Div(_body(ctx, chosen), id="compare-content"),
        ],
        className="page",
        id="page-compare",
    )


def layout(ctx: DashboardContext) -> Any:
    return _page(ctx, [])


def detail(ctx: DashboardContext, rest: str) -> Any:
    ids: list[str] = []
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(ctx.store.runs.resolve(part))
        except Exception:
            continue
    return _page(ctx, ids)


def register(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(
        Output("compare-content", "children"),
        Input("compare-runs", "value"),
        prevent_initial_call=True,
    )
    def chosen(ids: list[str] | None) -> Any:
        if ids is None:
            return no_update
        return _body(ctx, list(ids)[:MAX_RUNS])


PAGE = Page(
    path="/compare",
    title="Compare",
    glyph="⇄",
    summary="runs side by side",
    layout=layout,
    register=register,
    detail=detail,
)
