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
