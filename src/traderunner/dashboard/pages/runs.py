"""Runs: every saved result the user may see, and one run in detail (``/runs/ID``).

The detail of a backtest: metric cards, the equity and drawdown charts, a candlestick chart of
each symbol with its trades, the trades table (AG Grid: sortable, filterable), and downloads of
the trades and equity as CSV and of the self-contained HTML report (``reports/run.py``, the same
files ``traderunner results export`` writes). A job that has not finished yet shows its progress
and turns into its result when it is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash import Input, Output, State, dcc, html, no_update

from traderunner.dashboard import components as ui
from traderunner.dashboard.pages import Page
from traderunner.dashboard.readmodels import runs as rm
from traderunner.dashboard.web import current_is_admin, current_user
from traderunner.domain.jobs import JobKind, JobState
from traderunner.domain.runs import RunKind
from traderunner.errors import PermissionDeniedError, TraderunnerError
from traderunner.reports.text import format_metric, params_text

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

PENDING_MS = 250
#: An equity curve is drawn with about this many points (a chart is about 1,100 px wide).
CURVE_POINTS = 1500

# -- the listing -------------------------------------------------------------------------------

_PCT = {"function": "params.value == null ? '—' : d3.format('.2%')(params.value)"}
_NUM = {"function": "params.value == null ? '—' : d3.format('.3~f')(params.value)"}
_COLUMNS: list[dict[str, Any]] = [
    {
        "field": "created",
        "headerName": "saved (UTC)",
        "minWidth": 185,
        "sort": "desc",
        "checkboxSelection": True,
        "headerCheckboxSelection": True,
    },
    {"field": "name", "minWidth": 110},
    {"field": "kind", "minWidth": 105, "maxWidth": 115},
    {"field": "strategy", "minWidth": 120},
    {"field": "params", "minWidth": 150},
    {"field": "symbols", "minWidth": 105},
    {"field": "timeframe", "headerName": "tf", "minWidth": 70, "maxWidth": 80},
    {"field": "owner", "minWidth": 90, "maxWidth": 120},
    {
        "field": "total_return",
        "headerName": "return",
        "type": "numericColumn",
        "valueFormatter": _PCT,
        "minWidth": 100,
    },
    {"field": "sharpe", "type": "numericColumn", "valueFormatter": _NUM, "minWidth": 100},
    {
        "field": "max_drawdown",
        "headerName": "max DD",
        "type": "numericColumn",
        "valueFormatter": _PCT,
        "minWidth": 105,
    },
    {"field": "trades", "type": "numericColumn", "minWidth": 95},
]


def _rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    page = rm.list_runs(ctx.store, user=current_user(), admin=current_is_admin())
    rows = []
    for r in page.items:
        m = r.metrics
        rows.append(
            {
                "id": r.id,
                "created": r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "name": r.name,
                "kind": r.kind.value,
                "strategy": r.strategy,
                "params": params_text(r.params) if r.kind is RunKind.BACKTEST else "grid",
                "symbols": ", ".join(r.symbols),
                "timeframe": r.timeframe,
                "owner": r.owner,
                "total_return": m.get("total_return"),
                "sharpe": m.get("sharpe"),
                "max_drawdown": m.get("max_drawdown"),
                "trades": m.get("trades"),
            }
        )
    return rows


def layout(ctx: DashboardContext) -> Any:
    rows = _rows(ctx)
    body: Any
    if not rows:
        body = ui.empty(
            "No saved runs yet.", "Queue a backtest on the Backtests page; its result lands here."
        )
    else:
        body = ui.grid(
            "runs-grid",
            _COLUMNS,
            rows,
            row_id="id",
            height=min(640, 60 + 42 * len(rows)),
            rowSelection="multiple",
            suppressRowClickSelection=True,
            pagination=True,
            paginationPageSize=50,
        )
    return html.Div(
        [
            ui.page_header(
                "Runs",
                "Every saved backtest and sweep: click one to open it, tick several to compare.",
                html.Button(
                    "Compare selected",
                    id="runs-compare",
                    className="button",
                    disabled=True,
                    n_clicks=0,
                ),
            ),
            ui.card(
                "Saved runs",
                body,
                subtitle=f"the newest {rm.LIST_LIMIT} you may see; an admin sees everyone's",
            ),
        ],
        className="page",
        id="page-runs",
    )


# -- one run ------------------------------------------------------------------------------------


def _kpis(view: rm.RunView) -> list[Any]:
    metrics = view.record.metrics
    out = []
    for name, label in rm.HEADLINE:
        value = metrics.get(name)
        tone = ""
        if name in ("total_return", "cagr", "sharpe") and isinstance(value, int | float):
            tone = "good" if value > 0 else "bad" if value < 0 else ""
        out.append(ui.kpi(label, format_metric(name, value), tone=tone, id=f"kpi-{name}"))
    return out


def equity_figure(view: rm.RunView) -> dict[str, Any]:
    """Equity over its drawdown on one time axis (built as a dict: see ``ui.plain_layout``)."""
    from traderunner.reports.figures import drawdown

    data: list[dict[str, Any]] = []
    breaks: list[dict[str, Any]] = []
    equity = view.frames.get("equity")
    if equity is not None and len(equity):
        curve = equity.set_index("ts")["equity"]
        step = max(1, len(curve) // CURVE_POINTS)  # enough for the eye, few for the browser
        shown = curve.iloc[::step]
        down = drawdown(curve).iloc[::step] * 100
        x = ui.times(shown.index)
        breaks = ui.session_breaks(curve.index)
        data = [
            {
                "type": "scatter",
                "x": x,
                "y": shown.to_numpy(),
                "name": "equity",
                "mode": "lines",
                "line": {"color": ui.ACCENT, "width": 1.6},
                "xaxis": "x",
                "yaxis": "y",
            },
            {
                "type": "scatter",
                "x": x,
                "y": down.to_numpy(),
                "name": "drawdown %",
                "mode": "lines",
                "fill": "tozeroy",
                "line": {"color": ui.BAD, "width": 1},
                "fillcolor": "rgba(248, 81, 73, 0.25)",
                "xaxis": "x2",
                "yaxis": "y2",
            },
        ]
    layout = ui.plain_layout(
        height=380,
        axes=("xaxis", "yaxis", "xaxis2", "yaxis2"),
        hovermode="x unified",
        xaxis={"anchor": "y", "matches": "x2", "showticklabels": False, "rangebreaks": breaks},
        xaxis2={"anchor": "y2", "rangebreaks": breaks},
        yaxis={"domain": [0.36, 1.0], "title": {"text": "equity"}},
        yaxis2={"domain": [0.0, 0.3], "title": {"text": "drawdown %"}},
    )
    return {"data": data, "layout": layout}


def price_figure(candles: rm.Candles | None, trades: Any) -> dict[str, Any]:
    """Candles of one symbol with its trades on them (built as a dict)."""
    import numpy as np

    data: list[dict[str, Any]] = []
    breaks: list[dict[str, Any]] = []
    if candles is not None:
        breaks = ui.session_breaks(candles.ts)
        data.append(
            {
                "type": "candlestick",
                "x": ui.times(candles.ts),
                "open": candles.open,
                "high": candles.high,
                "low": candles.low,
                "close": candles.close,
                "name": candles.symbol,
                "increasing": {"line": {"color": ui.GOOD, "width": 1}},
                "decreasing": {"line": {"color": ui.BAD, "width": 1}},
            }
        )
        if trades is not None and len(trades) and "symbol" in trades:
            mine = trades[trades["symbol"].astype(str) == candles.symbol]
            if len(mine):
                size = mine["size"].astype(float).to_numpy()
                pnl = mine["pnl"].astype(float).to_numpy()
                long = size >= 0
                data.append(
                    {
                        "type": "scatter",
                        "x": ui.times(mine["entry_time"]),
                        "y": mine["entry_price"].astype(float).to_numpy(),
                        "mode": "markers",
                        "name": "entry",
                        "marker": {
                            "symbol": np.where(long, "triangle-up", "triangle-down"),
                            "size": 11,
                            "color": ui.ACCENT,
                            "line": {"color": "#ffffff", "width": 1},
                        },
                        "text": np.where(long, "long", "short"),
                        "hovertemplate": "%{text} entry %{y:.4f}<extra></extra>",
                    }
                )
                data.append(
                    {
                        "type": "scatter",
                        "x": ui.times(mine["exit_time"]),
                        "y": mine["exit_price"].astype(float).to_numpy(),
                        "mode": "markers",
                        "name": "exit",
                        "marker": {
                            "symbol": "x",
                            "size": 10,
                            "color": np.where(pnl >= 0, ui.GOOD, ui.BAD),
                            "line": {"color": "#ffffff", "width": 0.5},
                        },
                        "customdata": pnl,
                        "hovertemplate": "exit %{y:.4f}, pnl %{customdata:,.2f}<extra></extra>",
                    }
                )
    layout = ui.plain_layout(
        height=420, xaxis={"rangeslider": {"visible": False}, "rangebreaks": breaks}
    )
    return {"data": data, "layout": layout}


_TRADE_COLUMNS: list[dict[str, Any]] = [
    {"field": "symbol", "minWidth": 90, "maxWidth": 110, "pinned": "left"},
    {"field": "entry_time", "headerName": "entry (UTC)", "minWidth": 150},
    {"field": "exit_time", "headerName": "exit (UTC)", "minWidth": 150},
    {"field": "side", "maxWidth": 90},
    {
        "field": "entry_price",
        "headerName": "entry price",
        "type": "numericColumn",
        "valueFormatter": _NUM,
    },
    {
        "field": "exit_price",
        "headerName": "exit price",
        "type": "numericColumn",
        "valueFormatter": _NUM,
    },
    {"field": "size", "type": "numericColumn", "valueFormatter": _NUM},
    {
        "field": "pnl",
        "type": "numericColumn",
        "valueFormatter": {"function": "d3.format(',.2f')(params.value)"},
        "cellClassRules": {"good": "params.value > 0", "bad": "params.value < 0"},
    },
    {"field": "return", "type": "numericColumn", "valueFormatter": _PCT},
    {"field": "fees", "type": "numericColumn", "valueFormatter": _NUM},
    {"field": "bars", "type": "numericColumn", "maxWidth": 90},
    {"field": "exit_reason", "headerName": "exit", "maxWidth": 120},
]


def _trade_rows(view: rm.RunView) -> list[dict[str, Any]]:
    out = []
    for t in view.doc.get("trade_list") or []:
        row = dict(t)
        for name in ("entry_time", "exit_time"):
            row[name] = str(row.get(name) or "").replace("T", " ")[:19]
        row["side"] = "long" if float(row.get("size") or 0) >= 0 else "short"
        out.append(row)
    return out


def run_body(ctx: DashboardContext, view: rm.RunView) -> Any:
    record = view.record
    symbols = list(record.symbols)
    first = symbols[0] if symbols else None
    candles = rm.candles(ctx.store, record, first) if first else None
    merged = (
        f"each candle merges {candles.merged} {record.timeframe} bars"
        if candles is not None and candles.merged > 1
        else f"{record.timeframe} bars"
    )
    trade_rows = _trade_rows(view)
    per_symbol: Any = None
    if len(view.per_symbol) > 1:
        per_symbol = ui.card(
            "By symbol",
            ui.grid(
                "run-symbols-grid",
                [{"field": "metric", "pinned": "left"}]
                + [{"field": s, "type": "numericColumn"} for s in view.per_symbol],
                [
                    {
                        "metric": label,
                        **{s: format_metric(n, m.get(n)) for s, m in view.per_symbol.items()},
                    }
                    for n, label in rm.HEADLINE
                ],
                filter=False,
            ),
        )
    return html.Div(
        [
            dcc.Store(id="run-id", data=record.id),
            html.Div(_kpis(view), className="kpis", id="run-kpis"),
            ui.card(
                "Equity and drawdown",
                ui.chart("run-equity", equity_figure(view)),
                subtitle=f"{len(view.frames.get('equity', [])):,} bars · portfolio",
            ),
            ui.card(
                "Price and trades",
                ui.chart("run-price", price_figure(candles, view.trades)),
                subtitle=f"{merged}; ▲ long entry, ▼ short entry, ✕ exit (green won, red lost)",
                tools=dcc.Dropdown(
                    id="run-symbol",
                    options=symbols,
                    value=first,
                    clearable=False,
                    className="select",
                )
                if len(symbols) > 1
                else None,
            ),
            per_symbol,
            ui.card(
                "Trades",
                ui.grid(
                    "run-trades-grid",
                    _TRADE_COLUMNS,
                    trade_rows,
                    height=min(460, 60 + 34 * max(len(trade_rows), 1)),
                    pagination=len(trade_rows) > 100,
                    paginationPageSize=100,
                )
                if trade_rows
                else ui.empty("No trades: the strategy never entered a position."),
                subtitle=f"{len(trade_rows):,} trades · sort and filter by any column",
            ),
        ],
        className="page-body",
        id="run-body",
    )


def _header(record: Any, *extra: Any) -> Any:
    named = f" “{record.name}”" if record.name else ""
    period = str(record.summary.get("period") or "") or "all data"
    return ui.page_header(
        f"{record.strategy}{named}",
        f"{params_text(record.params)} · {', '.join(record.symbols)} · {record.timeframe} · "
        f"{period} · owner {record.owner or '—'} · {record.id[:12]}",
        *extra,
    )


def _downloads() -> Any:
    return html.Div(
        [
            html.Button("Trades CSV", id="run-dl-trades-btn", className="button ghost", n_clicks=0),
            html.Button("Equity CSV", id="run-dl-equity-btn", className="button ghost", n_clicks=0),
            html.Button("HTML report", id="run-dl-report-btn", className="button", n_clicks=0),
            dcc.Download(id="run-dl-trades"),
            dcc.Download(id="run-dl-equity"),
            dcc.Download(id="run-dl-report"),
        ],
        className="actions",
    )


def _pending(ctx: DashboardContext, job_id: str) -> Any:
    """A job whose result is not stored yet: its progress, polled until it is."""
    try:
        record = ctx.jobs().status(job_id)
    except TraderunnerError:
        return None
    return html.Div(
        [
            ui.page_header(
                str(record.spec.get("strategy") or record.kind.value),
                f"job {record.id[:12]} · {', '.join(record.spec.get('symbols') or [])} · "
                f"{record.spec.get('timeframe', '')}",
            ),
            dcc.Store(id="run-pending-id", data=record.id),
            dcc.Interval(id="run-pending-tick", interval=PENDING_MS),
            html.Div(_progress(record), id="run-pending"),
            ui.card(
                "The job",
                ui.facts(
                    [
                        ("parameters", params_text(record.spec.get("params") or {})),
                        (
                            "period",
                            f"{record.spec.get('start') or 'start'} .. "
                            f"{record.spec.get('end') or 'end'}",
                        ),
                        (
                            "options",
                            ", ".join(
                                f"{k}={v}" for k, v in (record.spec.get("options") or {}).items()
                            )
                            or "defaults",
                        ),
                        ("owner", record.owner or "—"),
                        ("queue", f"{record.queue.value} (priority {record.priority})"),
                        (
                            "queued at",
                            f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC"
                            if record.created_at
                            else "—",
                        ),
                    ]
                ),
            ),
        ],
        className="page",
        id="page-run",
    )


def _progress(record: Any) -> Any:
    share = 1.0 if record.state is JobState.SUCCEEDED else float(record.progress)
    return ui.card(
        "Running" if not record.state.terminal else record.state.value.capitalize(),
        html.Div(
            html.Div(className="progress-fill accent", style={"width": f"{share * 100:.1f}%"}),
            className="progress",
        ),
        html.P(
            f"{record.state.value} · {share * 100:.0f}% · {record.error or record.message}",
            className="muted",
            id="run-pending-state",
        ),
    )


def detail(ctx: DashboardContext, run_id: str) -> Any:
    try:
        view = rm.open_run(ctx.store, run_id, user=current_user(), admin=current_is_admin())
    except PermissionDeniedError as exc:
        return html.Div(
            [ui.page_header("Not yours", str(exc)), ui.empty("Ask its owner or an admin.")],
            className="page",
            id="page-run",
        )
    if view is None:
        pending = _pending(ctx, run_id)
        if pending is not None:
            return pending
        return html.Div(
            [
                ui.page_header("No such run", f"No saved run or job {run_id!r}."),
                ui.empty("See the Runs page for what is saved."),
            ],
            className="page",
            id="page-run",
        )
    if view.record.kind is RunKind.SWEEP:
        from traderunner.dashboard.pages import sweeps

        return sweeps.detail(ctx, view.record.id)
    return html.Div(
        [_header(view.record, _downloads()), run_body(ctx, view)],
        className="page",
        id="page-run",
    )


def _view(
    ctx: DashboardContext, run_id: str | None, tables: tuple[str, ...] | None = ("equity",)
) -> rm.RunView | None:
    if not run_id:
        return None
    return rm.open_run(
        ctx.store, run_id, user=current_user(), admin=current_is_admin(), tables=tables
    )


def register(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(
        Output("run-price", "figure"),
        Input("run-symbol", "value"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def pick_symbol(symbol: str | None, run_id: str | None) -> Any:
        view = _view(ctx, run_id)
        if view is None or not symbol:
            return no_update
        return price_figure(rm.candles(ctx.store, view.record, symbol), view.trades)

    @app.callback(
        Output("page-content", "children", allow_duplicate=True),
        Output("run-pending", "children"),
        Input("run-pending-tick", "n_intervals"),
        State("run-pending-id", "data"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def follow(_: int, job_id: str | None, path: str | None) -> Any:
        # Only while this job's page is shown: never replace a page the user moved on to.
        if not job_id or not str(path or "").rstrip("/").endswith(job_id):
            return no_update, no_update
        record = ctx.jobs().status(job_id)
        if record.state is JobState.SUCCEEDED and record.kind in (JobKind.BACKTEST, JobKind.SWEEP):
            return detail(ctx, job_id), no_update
        return no_update, _progress(record)

    @app.callback(
        Output("run-dl-trades", "data"),
        Input("run-dl-trades-btn", "n_clicks"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def download_trades(clicks: int, run_id: str | None) -> Any:
        from traderunner.reports.run import trades_csv

        view = _view(ctx, run_id) if clicks else None
        if view is None:
            return no_update
        return {"content": trades_csv(view.doc), "filename": f"{view.record.id[:12]}-trades.csv"}

    @app.callback(
        Output("run-dl-equity", "data"),
        Input("run-dl-equity-btn", "n_clicks"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def download_equity(clicks: int, run_id: str | None) -> Any:
        from traderunner.reports.run import equity_csv

        view = _view(ctx, run_id) if clicks else None
        if view is None or "equity" not in view.frames:
            return no_update
        return {
            "content": equity_csv(view.frames["equity"]),
            "filename": f"{view.record.id[:12]}-equity.csv",
        }

    @app.callback(
        Output("run-dl-report", "data"),
        Input("run-dl-report-btn", "n_clicks"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def download_report(clicks: int, run_id: str | None) -> Any:
        from traderunner.reports.run import backtest_report

        view = _view(ctx, run_id, tables=None) if clicks else None
        if view is None:
            return no_update
        return {
            "content": backtest_report(view.record, view.doc, view.frames),
            "filename": f"{view.record.id[:12]}-report.html",
        }

    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Input("runs-grid", "cellClicked"),
        prevent_initial_call=True,
    )
    def open_row(cell: dict[str, Any] | None) -> Any:
        row_id = (cell or {}).get("rowId")
        if not row_id or (cell or {}).get("colId") == "created":
            return no_update  # the first column holds the compare tick box
        return f"/runs/{row_id}"

    @app.callback(
        Output("runs-compare", "disabled"),
        Output("runs-compare", "children"),
        Input("runs-grid", "selectedRows"),
    )
    def selection(rows: list[dict[str, Any]] | None) -> Any:
        n = len([r for r in rows or [] if r.get("kind") == "backtest"])
        return n < 2, f"Compare {n} selected" if n >= 2 else "Compare selected"

    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Input("runs-compare", "n_clicks"),
        State("runs-grid", "selectedRows"),
        prevent_initial_call=True,
    )
    def compare(clicks: int, rows: list[dict[str, Any]] | None) -> Any:
        ids = [r["id"] for r in rows or [] if r.get("kind") == "backtest"]
        if not clicks or len(ids) < 2:
            return no_update
        return "/compare/" + ",".join(ids)


PAGE = Page(
    path="/runs",
    title="Runs",
    glyph="≡",
    summary="every stored result",
    layout=layout,
    register=register,
    detail=detail,
)
