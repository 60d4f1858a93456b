"""Pages whose read models are still being built: each says what it will hold, and shows no
made-up figures. Each is replaced by its own module when its read model lands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash import html

from traderunner.dashboard.components import card, page_header
from traderunner.dashboard.pages import Page

if TYPE_CHECKING:
    from traderunner.dashboard.context import DashboardContext


def _coming(title: str, subtitle: str, will: list[str], waits_for: str, cli: str) -> Any:
    def layout(ctx: DashboardContext) -> Any:
        return html.Div(
            [
                page_header(title, subtitle),
                card(
                    "Coming next",
                    html.P("This page will show:", className="muted"),
                    html.Ul([html.Li(item) for item in will], className="coming-list"),
                    html.P(
                        ["It waits for ", html.Strong(waits_for), "."],
                        className="muted",
                    ),
                    html.P(["Today, from the command line: ", html.Code(cli)], className="small"),
                    subtitle="not built yet",
                    className="coming",
                ),
            ],
            className="page",
            id=f"page-{title.lower()}",
        )

    return layout


BACKTESTS = Page(
    path="/backtests",
    aliases=("/",),
    title="Backtests",
    glyph="▶",
    summary="submit backtests and watch them run",
    layout=_coming(
        "Backtests",
        "Submit a backtest and follow it until its result is stored.",
        [
            "a form built from the strategy registry: each parameter with its bounds and "
            "default, symbols and periods from the store, timeframe, fills, direction, costs, "
            "stops and priority; bad input shown beside its field, nothing queued",
            "your jobs with live state and progress bars, cancel and retry; they survive a "
            "reload and a dashboard restart (the record is in the store)",
        ],
        "the results read model (JobClient.list filters and paging, the runs repository)",
        "traderunner backtest STRATEGY --submit",
    ),
)

RUNS = Page(
    path="/runs",
    title="Runs",
    glyph="≡",
    summary="every stored result",
    layout=_coming(
        "Runs",
        "Every stored backtest, and each one in detail.",
        [
            "all runs, filterable by strategy, symbol, owner and date",
            "a run's metric cards, equity and drawdown charts, a candlestick chart with its "
            "trades, the trades table, CSV downloads and a shareable HTML report",
        ],
        "the results read model and results export",
        "traderunner jobs list",
    ),
)

COMPARE = Page(
    path="/compare",
    title="Compare",
    glyph="⇄",
    summary="runs side by side",
    layout=_coming(
        "Compare",
        "Several runs on one chart.",
        ["the equity curves of the chosen runs overlaid", "their metrics side by side"],
        "the results read model",
        "traderunner jobs show ID",
    ),
)

SWEEPS = Page(
    path="/sweeps",
    title="Sweeps",
    glyph="▦",
    summary="parameter grids",
    layout=_coming(
        "Sweeps",
        "Parameter grids over many workers.",
        [
            "submit a grid and watch its chunks complete",
            "a heatmap of a chosen metric over two chosen parameters, and the top-N table",
            "a click on a cell opens that combination's backtest",
        ],
        "the results read model (sweep tables by job)",
        "traderunner sweep STRATEGY --submit",
    ),
)

LIVE = Page(
    path="/live",
    title="Live",
    glyph="◉",
    summary="the paper trader",
    layout=_coming(
        "Live",
        "The stream service and the paper trader.",
        [
            "the latest candles from the cache and the signal feed",
            "positions, orders, fills and PnL of the paper trader",
            "the live strategy configurations, and the kill switch",
        ],
        "the live path (stream service, signal bus, paper trader)",
        "traderunner cache stats",
    ),
)
