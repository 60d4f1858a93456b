"""Live: the stream service and the paper trader, as their read models show them.

Refreshed every ``REFRESH_S`` while the page is open: the kill switch (the key of
``trader/killswitch.py`` in the durable Redis, through ``readmodels/live.py``; *Halt* by any
user, *Resume* by an admin), the paper accounts
(equity, cash, realized and unrealized PnL, the day's start), the positions (the trader's
snapshot in the cache, else the store), the live strategies (``store.live``) with the latest
candle of each of their series from the market cache, the signal feed (the newest entries of
the signals stream on the bus, ``bus.live.recent``: durable, so a page opened late still
shows what was sent) and the newest orders (``store.trading``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dash import Input, Output, State, dcc, html, no_update

from traderunner.dashboard import components as ui
from traderunner.dashboard.pages import Page
from traderunner.dashboard.web import current_is_admin, current_user

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

REFRESH_S = 2
SIGNALS_SHOWN = 30
ORDERS_SHOWN = 50


def _when(ns: int | None) -> str:
    if not ns:
        return "—"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _switch(ctx: DashboardContext) -> Any:
    from traderunner.dashboard.readmodels.live import switch_state

    try:
        state = switch_state(ctx.redis.durable, ctx.redis.keys)
    except Exception as exc:
        return ui.kpi("Kill switch", "unknown", str(exc)[:80], tone="warn", id="live-switch")
    if state is None:
        return ui.kpi("Kill switch", "off", "trading allowed", tone="good", id="live-switch")
    when = datetime.fromtimestamp(float(state.get("at") or 0), tz=UTC).strftime("%m-%d %H:%M")
    note = f"by {state.get('by', '?')} at {when}: {state.get('reason', '')}"
    return ui.kpi("Kill switch", "HALTED", note, tone="bad", id="live-switch")


def _accounts(ctx: DashboardContext) -> list[Any]:
    out = []
    for account in ctx.store.trading.accounts():
        d = account.to_dict()
        pnl = account.equity - account.start_cash
        out.append(
            ui.kpi(
                f"Account {account.name}",
                _money(account.equity),
                f"PnL {_money(pnl)} · realized {_money(account.realized_pnl)} · "
                f"unrealized {_money(d['unrealized_pnl'])} · day start "
                f"{_money(account.day_start_equity)}",
                tone="good" if pnl > 0 else "bad" if pnl < 0 else "",
                id=f"live-account-{account.name}",
            )
        )
    return out


def _positions(ctx: DashboardContext) -> tuple[list[dict[str, Any]], str]:
    from traderunner.cache.snapshots import read_snapshot

    rows: list[dict[str, Any]] = []
    accounts = ctx.store.trading.accounts()
    source = "cache snapshot" if accounts else "store"
    for account in accounts:
        snap = read_snapshot(ctx.redis.cache, ctx.redis.keys, account.name)
        if snap is None:
            source = "store (no snapshot in the cache)"
            rows += [p.to_dict() for p in ctx.store.trading.positions(account=account.name)]
        else:
            rows += list(snap.get("positions") or [])
    for row in rows:
        row["bar"] = _when(row.get("bar_ns"))
    return rows, source


def _latest(ctx: DashboardContext, strategies: list[Any]) -> dict[tuple[str, str], Any]:
    from traderunner.domain.timeframe import Timeframe

    found: dict[tuple[str, str], Any] = {}
    market = ctx.market()
    for live in strategies:
        for symbol in live.symbols:
            key = (symbol, live.timeframe)
            if key in found:
                continue
            try:
                found[key] = market.latest(symbol, Timeframe.parse(live.timeframe))
            except Exception:
                found[key] = None
    return found


def _strategy_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    strategies = ctx.store.live.list()
    latest = _latest(ctx, strategies)
    rows = []
    for live in strategies:
        for symbol in live.symbols:
            bar = latest.get((symbol, live.timeframe))
            rows.append(
                {
                    "id": f"{live.name}:{symbol}",
                    "name": live.name,
                    "strategy": live.strategy,
                    "params": " ".join(f"{k}={v}" for k, v in live.params.items()) or "defaults",
                    "symbol": symbol,
                    "timeframe": live.timeframe,
                    "account": live.account,
                    "state": "paused" if live.paused else "running",
                    "latest": _when(getattr(bar, "ts_ns", None)),
                    "close": getattr(bar, "close", None),
                }
            )
    return rows


def _signal_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    from traderunner.bus import topics
    from traderunner.bus.live import recent

    try:
        found = recent(ctx.redis.durable, ctx.redis.keys, topics.SIGNALS, SIGNALS_SHOWN)
    except Exception:
        return []
    rows = []
    for env in reversed(found):  # newest first
        p = env.payload
        rows.append(
            {
                "id": env.id,
                "sent": _when(env.ts_ns),
                "live": p.get("live"),
                "symbol": p.get("symbol"),
                "bar": _when(p.get("bar_ns")),
                "change": f"{p.get('previous')} → {p.get('target')}",
                "close": p.get("close"),
            }
        )
    return rows


def _order_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    orders = ctx.store.trading.orders(limit=ORDERS_SHOWN)
    return [
        {
            "id": o.id,
            "bar": _when(o.bar_ns),
            "live": o.live,
            "symbol": o.symbol,
            "change": f"{o.previous} → {o.target}",
            "status": o.status.value,
            "reason": o.reason,
        }
        for o in reversed(orders)
    ]


_COLS: dict[str, list[dict[str, Any]]] = {
    "positions": [
        {"field": "account", "maxWidth": 120},
        {"field": "live", "headerName": "live strategy"},
        {"field": "symbol", "maxWidth": 110},
        {"field": "units", "type": "numericColumn"},
        {"field": "entry_price", "headerName": "entry", "type": "numericColumn"},
        {"field": "last_price", "headerName": "last", "type": "numericColumn"},
        {"field": "equity", "type": "numericColumn"},
        {"field": "realized_pnl", "headerName": "realized", "type": "numericColumn"},
        {"field": "unrealized_pnl", "headerName": "unrealized", "type": "numericColumn"},
        {"field": "bar", "headerName": "after bar (UTC)", "minWidth": 160},
    ],
    "strategies": [
        {"field": "name", "minWidth": 120},
        {"field": "strategy"},
        {"field": "params", "minWidth": 140},
        {"field": "symbol", "maxWidth": 110},
        {"field": "timeframe", "headerName": "tf", "maxWidth": 80},
        {"field": "account", "maxWidth": 120},
        {"field": "state", "maxWidth": 110},
        {"field": "latest", "headerName": "latest candle (UTC)", "minWidth": 160},
        {"field": "close", "type": "numericColumn"},
    ],
    "signals": [
        {"field": "sent", "headerName": "sent (UTC)", "minWidth": 160},
        {"field": "live", "headerName": "live strategy"},
        {"field": "symbol", "maxWidth": 110},
        {"field": "bar", "headerName": "bar (UTC)", "minWidth": 160},
        {"field": "change", "headerName": "target", "maxWidth": 110},
        {"field": "close", "type": "numericColumn"},
    ],
    "orders": [
        {"field": "bar", "headerName": "bar (UTC)", "minWidth": 160},
        {"field": "live", "headerName": "live strategy"},
        {"field": "symbol", "maxWidth": 110},
        {"field": "change", "headerName": "target", "maxWidth": 110},
        {"field": "status", "maxWidth": 120},
        {"field": "reason", "minWidth": 160},
    ],
}


def _table(name: str, rows: list[dict[str, Any]], empty: str) -> Any:
    if not rows:
        return ui.empty(empty)
    return ui.grid(f"live-{name}-grid", _COLS[name], rows, row_id="id" if "id" in rows[0] else None)


def _body(ctx: DashboardContext) -> Any:
    positions, source = _positions(ctx)
    return html.Div(
        [
            html.Div([_switch(ctx), *_accounts(ctx)], className="kpis", id="live-kpis"),
            ui.card(
                "Positions",
                _table("positions", positions, "No positions: the trader has recorded none."),
                subtitle=f"from the {source}",
            ),
            html.Div(
                [
                    ui.card(
                        "Signal feed",
                        _table("signals", _signal_rows(ctx), "No signals on the bus yet."),
                        subtitle=f"the newest {SIGNALS_SHOWN} on the signals stream",
                    ),
                    ui.card(
                        "Orders",
                        _table("orders", _order_rows(ctx), "No orders yet."),
                        subtitle=f"the newest {ORDERS_SHOWN}",
                    ),
                ],
                className="row two",
            ),
            ui.card(
                "Live strategies",
                _table(
                    "strategies",
                    _strategy_rows(ctx),
                    "No live strategies: add one with 'traderunner live add NAME --strategy S "
                    "--symbols A,B --timeframe M5'.",
                ),
                subtitle="with the latest candle of each series from the market cache",
            ),
        ],
        className="page-body",
    )


def layout(ctx: DashboardContext) -> Any:
    return html.Div(
        [
            ui.page_header(
                "Live",
                f"The stream service and the paper trader, refreshed every {REFRESH_S} s.",
                html.Div(
                    [
                        html.Button("Halt trading", id="live-halt", className="button bad-button"),
                        html.Button(
                            "Resume",
                            id="live-resume",
                            className="button ghost",
                            disabled=not current_is_admin(),
                        ),
                    ],
                    className="actions",
                ),
            ),
            html.Div(id="live-switch-message", className="form-status", role="status"),
            dcc.Interval(id="live-tick", interval=REFRESH_S * 1000),
            html.Div(_body(ctx), id="live-body"),
        ],
        className="page",
        id="page-live",
    )


def register(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(
        Output("live-body", "children"),
        Input("live-tick", "n_intervals"),
        Input("live-switch-message", "children"),
        prevent_initial_call=True,
    )
    def refresh(_: int | None, __: Any) -> Any:
        return _body(ctx)

    @app.callback(
        Output("live-switch-message", "children"),
        Input("live-halt", "n_clicks"),
        Input("live-resume", "n_clicks"),
        State("live-switch-message", "children"),
        prevent_initial_call=True,
    )
    def switch(halt: int | None, resume: int | None, _: Any) -> Any:
        from dash import ctx as callback_ctx

        from traderunner.dashboard.readmodels import live as switch

        durable, keys = ctx.redis.durable, ctx.redis.keys
        if callback_ctx.triggered_id == "live-halt" and halt:
            done = switch.halt(durable, keys, current_user(), "halted from the dashboard")
            return f"halted by {current_user()}" if done else "already halted"
        if callback_ctx.triggered_id == "live-resume" and resume:
            if not current_is_admin():
                return html.Span("only an admin may resume trading", className="bad")
            return "resumed" if switch.resume(durable, keys) else "was not halted"
        return no_update


PAGE = Page(
    path="/live",
    title="Live",
    glyph="◉",
    summary="the paper trader",
    layout=layout,
    register=register,
)
