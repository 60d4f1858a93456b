"""Sweeps: queue a parameter grid, watch its chunks complete, and read the result.

``/sweeps`` has the form (each parameter takes ``start:stop:step``, a list ``a,b,c`` or one
value) and the live list of sweep jobs. ``/sweeps/ID`` shows the chunks as they finish (polled
from the job records) and then the sweep: a heatmap of a chosen metric over two chosen
parameters (the best value over the other parameters), the top-N table, and for a clicked cell
that combination's backtest: opened when it is saved already, else queued as a backtest job
through ``jobs.client`` (the same symbols, timeframe, period and options) and followed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from traderunner.dashboard import components as ui
from traderunner.dashboard import forms, joblist
from traderunner.dashboard.pages import Page
from traderunner.dashboard.pages import backtests as bt
from traderunner.dashboard.readmodels import runs as rm
from traderunner.dashboard.web import current_is_admin, current_user
from traderunner.domain.jobs import JobKind, JobState
from traderunner.errors import PermissionDeniedError, TraderunnerError
from traderunner.reports.run import SWEEP_METRICS, top_rows
from traderunner.reports.text import format_metric, grid_text

if TYPE_CHECKING:
    import pandas as pd
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

PREFIX = "sw"
CHUNKS_MS = 500
TOP_N = (10, 25, 50, 100)
#: Metrics where smaller is better are still ranked descending (max_drawdown is negative).
METRIC_CHOICES = (
    "sharpe",
    "total_return",
    "cagr",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trades",
    "exposure",
)


def layout(ctx: DashboardContext) -> Any:
    found = bt.choices(ctx)
    form: Any
    if not found.series:
        form = ui.empty("The store holds no candles to sweep over.")
    else:
        form = html.Div(
            forms.job_form(PREFIX, found, grid=True, submit_label="Queue sweep"),
            className="job-form",
        )
    return html.Div(
        [
            ui.page_header(
                "Sweeps",
                "A parameter grid split into chunks over the workers; its best combinations.",
            ),
            html.Div(
                [
                    ui.card(
                        "New sweep", form, subtitle="each parameter: 5:50:5, 5,10,20 or one value"
                    ),
                    ui.card("Sweep jobs", joblist.job_list(PREFIX), subtitle="live"),
                ],
                className="row form-and-list",
            ),
        ],
        className="page",
        id="page-sweeps",
    )


# -- one sweep ----------------------------------------------------------------------------------


def _chunks(ctx: DashboardContext, job_id: str) -> Any:
    client = ctx.jobs()
    parent = client.status(job_id)
    children = client.children(job_id)
    done = sum(c.state is JobState.SUCCEEDED for c in children)
    cells = [
        html.Div(
            className=f"chunk state-{c.state.value}",
            title=f"chunk {i}: {c.state.value} {c.message}",
        )
        for i, c in enumerate(children)
    ]
    share = done / max(len(children), 1)
    return html.Div(
        [
            html.Div(
                [
                    ui.kpi(
                        "State",
                        parent.state.value,
                        parent.error or parent.message,
                        id="sweep-state",
                    ),
                    ui.kpi("Chunks done", f"{done} of {len(children)}", id="sweep-chunks-done"),
                    ui.kpi("Combinations", f"{int(parent.spec.get('combinations') or 0):,}"),
                ],
                className="kpis compact",
            ),
            html.Div(
                html.Div(className="progress-fill accent", style={"width": f"{share * 100:.1f}%"}),
                className="progress",
            ),
            html.Div(cells, className="chunks", id="sweep-chunks"),
        ]
    )


def heatmap_figure(rows: pd.DataFrame, x: str | None, y: str | None, metric: str) -> go.Figure:
    fig = go.Figure()
    if metric in rows and x in rows and y in rows and x != y:
        table = rows.pivot_table(index=y, columns=x, values=metric, aggfunc="max")
        fig.add_trace(
            go.Heatmap(
                x=[str(v) for v in table.columns],
                y=[str(v) for v in table.index],
                z=table.to_numpy(),
                colorscale="Viridis",
                colorbar={"title": {"text": metric}},
                hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.4g}}<extra></extra>",
                xgap=1,
                ygap=1,
            )
        )
        fig.update_xaxes(title_text=x, type="category")
        fig.update_yaxes(title_text=y, type="category")
    elif metric in rows and x in rows:
        line = rows.groupby(x)[metric].max()
        fig.add_trace(
            go.Scatter(
                x=[str(v) for v in line.index],
                y=line.to_numpy(),
                mode="lines+markers",
                line={"color": ui.ACCENT},
            )
        )
        fig.update_xaxes(title_text=x, type="category")
        fig.update_yaxes(title_text=metric)
    return ui.figure_layout(fig, height=460, legend=False)


def _top(rows: list[dict[str, Any]], params: list[str], metric: str, n: int) -> Any:
    best = top_rows(rows, metric, n)
    metrics = [metric, *[m for m in SWEEP_METRICS if m != metric]]
    columns: list[dict[str, Any]] = [{"field": "rank", "maxWidth": 80}]
    columns += [{"field": p, "type": "numericColumn"} for p in params]
    columns += [
        {"field": m, "headerName": m.replace("_", " "), "type": "numericColumn"} for m in metrics
    ]
    table = [
        {
            "rank": i + 1,
            **{p: r.get(p) for p in params},
            **{m: format_metric(m, r.get(m)) for m in metrics},
        }
        for i, r in enumerate(best)
    ]
    return ui.grid("sweep-top-grid", columns, table, row_id="rank", filter=False)


def _result(ctx: DashboardContext, view: rm.RunView) -> Any:
    import pandas as pd

    record = view.record
    rows = list(view.doc.get("rows") or [])
    frame = pd.DataFrame(rows)
    params = [p for p in record.params if p in frame]
    swept = [p for p in params if len(record.params[p]) > 1] or params
    x = swept[0] if swept else None
    y = swept[1] if len(swept) > 1 else None
    metric = str(record.summary.get("rank_by") or "sharpe")
    metrics = [m for m in METRIC_CHOICES if m in frame]

    def pick(id: str, options: list[str], value: str | None) -> Any:
        return dcc.Dropdown(
            id=id, options=options, value=value, clearable=False, className="select"
        )

    return html.Div(
        [
            dcc.Store(id="sweep-id", data=record.id),
            html.Div(
                [
                    ui.kpi(
                        "Combinations",
                        f"{len(rows):,}",
                        f"{int(view.doc.get('skipped') or 0)} skipped",
                    ),
                    ui.kpi("Best Sharpe", format_metric("sharpe", record.metrics.get("sharpe"))),
                    ui.kpi(
                        "Its return",
                        format_metric("total_return", record.metrics.get("total_return")),
                    ),
                    ui.kpi("Grid", grid_text(record.params)),
                ],
                className="kpis",
                id="sweep-kpis",
            ),
            ui.card(
                "Heatmap",
                html.Div(
                    [
                        html.Div(
                            [
                                html.Label("metric", className="field-label"),
                                pick("sweep-metric", metrics, metric),
                            ],
                            className="field",
                        ),
                        html.Div(
                            [html.Label("x", className="field-label"), pick("sweep-x", params, x)],
                            className="field",
                        ),
                        html.Div(
                            [html.Label("y", className="field-label"), pick("sweep-y", params, y)],
                            className="field",
                        ),
                    ],
                    className="form-grid",
                ),
                ui.chart("sweep-heatmap", heatmap_figure(frame, x, y, metric)),
                html.Div(id="sweep-cell", className="sweep-cell"),
                subtitle="each cell: the best value over the other parameters · click one",
            ),
            ui.card(
                "Top combinations",
                html.Div(_top(rows, params, metric, TOP_N[0]), id="sweep-top"),
                subtitle="by the chosen metric",
                tools=dcc.Dropdown(
                    id="sweep-n",
                    options=[{"label": f"top {n}", "value": n} for n in TOP_N],
                    value=TOP_N[0],
                    clearable=False,
                    className="select small-select",
                ),
            ),
        ],
        className="page-body",
        id="sweep-body",
    )


def _header(record: Any) -> Any:
    named = f" “{record.name}”" if record.name else ""
    period = str(record.summary.get("period") or "") or "all data"
    return ui.page_header(
        f"Sweep {record.strategy}{named}",
        f"{grid_text(record.params)} · {', '.join(record.symbols)} · {record.timeframe} · "
        f"{period} · owner {record.owner or '—'} · {record.id[:12]}",
    )


def detail(ctx: DashboardContext, job_id: str) -> Any:
    try:
        view = rm.open_run(ctx.store, job_id, user=current_user(), admin=current_is_admin())
    except PermissionDeniedError as exc:
        return html.Div([ui.page_header("Not yours", str(exc))], className="page", id="page-sweep")
    if view is not None:
        return html.Div(
            [_header(view.record), _result(ctx, view)], className="page", id="page-sweep"
        )
    try:
        parent = ctx.jobs().status(job_id)
    except TraderunnerError:
        parent = None
    if parent is None or parent.kind is not JobKind.SWEEP:
        return html.Div(
            [ui.page_header("No such sweep", f"No saved sweep or sweep job {job_id!r}.")],
            className="page",
            id="page-sweep",
        )
    if not current_is_admin() and parent.owner and parent.owner != current_user():
        return html.Div(
            [ui.page_header("Not yours", f"sweep {job_id} belongs to {parent.owner!r}")],
            className="page",
            id="page-sweep",
        )
    spec = parent.spec
    return html.Div(
        [
            ui.page_header(
                f"Sweep {spec.get('strategy', '')}",
                f"{grid_text(spec.get('grid') or {})} · {', '.join(spec.get('symbols') or [])} · "
                f"{spec.get('timeframe', '')} · job {parent.id[:12]}",
            ),
            dcc.Store(id="sweep-pending-id", data=parent.id),
            dcc.Interval(id="sweep-pending-tick", interval=CHUNKS_MS),
            ui.card(
                "Chunks", html.Div(_chunks(ctx, parent.id), id="sweep-pending"), subtitle="live"
            ),
        ],
        className="page",
        id="page-sweep",
    )


def _sweep_view(ctx: DashboardContext, sweep_id: str | None) -> rm.RunView | None:
    if not sweep_id:
        return None
    return rm.open_run(ctx.store, sweep_id, user=current_user(), admin=current_is_admin())


def _cell_params(
    view: rm.RunView, click: dict[str, Any], x: str, y: str | None, metric: str
) -> dict[str, Any] | None:
    """The best row (by ``metric``) of the clicked cell, as a full parameter set."""
    point = (click.get("points") or [{}])[0]
    rows = list(view.doc.get("rows") or [])
    match = [
        r
        for r in rows
        if str(r.get(x)) == str(point.get("x"))
        and (y is None or str(r.get(y)) == str(point.get("y")))
    ]
    best = top_rows(match, metric, 1)
    if not best:
        return None
    from traderunner.strategies import get_strategy

    specs = get_strategy(view.record.strategy).param_specs()
    return {s.name: best[0].get(s.name, s.default) for s in specs}


def register(app: Dash, ctx: DashboardContext) -> None:
    bt.register_form(app, ctx, PREFIX, grid=True)
    joblist.register(app, ctx, PREFIX, [JobKind.SWEEP])

    @app.callback(
        *bt.form_outputs(PREFIX),
        Input(f"{PREFIX}-submit", "n_clicks"),
        *bt.form_states(PREFIX),
        prevent_initial_call=True,
    )
    def submit(clicks: int | None, *values: Any) -> tuple[Any, ...]:
        if not clicks:
            return tuple(no_update for _ in range(len(forms.FIELDS) + 4))
        return bt.submit_form(ctx, PREFIX, values, grid=True)

    @app.callback(
        Output("page-content", "children", allow_duplicate=True),
        Output("sweep-pending", "children"),
        Input("sweep-pending-tick", "n_intervals"),
        State("sweep-pending-id", "data"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def follow(_: int, job_id: str | None, path: str | None) -> Any:
        # Only while this job's page is shown: never replace a page the user moved on to.
        if not job_id or not str(path or "").rstrip("/").endswith(job_id):
            return no_update, no_update
        if ctx.jobs().status(job_id).state is JobState.SUCCEEDED:
            return detail(ctx, job_id), no_update
        return no_update, _chunks(ctx, job_id)

    @app.callback(
        Output("sweep-heatmap", "figure"),
        Output("sweep-top", "children"),
        Input("sweep-metric", "value"),
        Input("sweep-x", "value"),
        Input("sweep-y", "value"),
        Input("sweep-n", "value"),
        State("sweep-id", "data"),
        prevent_initial_call=True,
    )
    def redraw(metric: str, x: str, y: str, n: int, sweep_id: str | None) -> Any:
        import pandas as pd

        view = _sweep_view(ctx, sweep_id)
        if view is None:
            return no_update, no_update
        rows = list(view.doc.get("rows") or [])
        params = [p for p in view.record.params if rows and p in rows[0]]
        return heatmap_figure(pd.DataFrame(rows), x, y, metric), _top(rows, params, metric, int(n))

    @app.callback(
        Output("sweep-cell", "children"),
        Input("sweep-heatmap", "clickData"),
        State("sweep-metric", "value"),
        State("sweep-x", "value"),
        State("sweep-y", "value"),
        State("sweep-id", "data"),
        prevent_initial_call=True,
    )
    def clicked(
        click: dict[str, Any] | None, metric: str, x: str, y: str | None, sweep_id: str | None
    ) -> Any:
        view = _sweep_view(ctx, sweep_id)
        if view is None or not click:
            return no_update
        params = _cell_params(view, click, x, y if y != x else None, metric)
        if params is None:
            return ui.empty("No combination in that cell.")
        saved = rm.matching_backtest(
            ctx.store, view.record, params, user=current_user(), admin=current_is_admin()
        )
        text = " ".join(f"{k}={v}" for k, v in params.items())
        button = (
            dcc.Link(
                "Open its backtest",
                href=f"/runs/{saved.id}",
                className="button",
                id="sweep-open-backtest",
            )
            if saved is not None
            else html.Button(
                "Run its backtest", id="sweep-run-backtest", className="button", n_clicks=0
            )
        )
        return html.Div(
            [
                html.Div([html.Strong("Chosen: "), html.Code(text, id="sweep-cell-params")]),
                dcc.Store(id="sweep-cell-store", data=params),
                button,
                html.Span(
                    "saved already"
                    if saved is not None
                    else "not run yet: queued as a backtest job",
                    className="muted small",
                ),
            ],
            className="actions",
        )

    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Output("sweep-cell", "children", allow_duplicate=True),
        Input("sweep-run-backtest", "n_clicks"),
        State("sweep-cell-store", "data"),
        State("sweep-id", "data"),
        prevent_initial_call=True,
    )
    def run_backtest(clicks: int, params: dict[str, Any] | None, sweep_id: str | None) -> Any:
        view = _sweep_view(ctx, sweep_id)
        if not clicks or view is None or not params:
            return no_update, no_update
        record = view.record
        sweep_job = None
        with contextlib.suppress(TraderunnerError):
            sweep_job = ctx.jobs().status(record.id)
        spec_src = sweep_job.spec if sweep_job is not None else {}
        spec = {
            "kind": "backtest",
            "strategy": record.strategy,
            "symbols": list(record.symbols),
            "timeframe": record.timeframe,
            "start": spec_src.get("start"),
            "end": spec_src.get("end"),
            "params": params,
            "options": dict(spec_src.get("options") or record.options),
            "name": f"from sweep {record.id[:8]}",
        }
        try:
            job = ctx.jobs().submit(spec, owner=current_user())
        except TraderunnerError as exc:
            return no_update, html.Span(str(exc), className="bad")
        return f"/runs/{job.id}", no_update


PAGE = Page(
    path="/sweeps",
    title="Sweeps",
    glyph="▦",
    summary="parameter grids",
    layout=layout,
    register=register,
    detail=detail,
)
