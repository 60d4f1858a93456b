"""The shell every page sits in: the navigation, the signed-in user, the router.

The router is one callback on the URL's path: it builds the matching page's layout (a fresh
read on every visit) and marks its link active. Unknown paths get a page that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash import Input, Output, dcc, html
from flask import has_request_context

from traderunner import __version__
from traderunner.dashboard.components import empty, page_header
from traderunner.dashboard.web import current_session

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dash import Dash

    from traderunner.dashboard.context import DashboardContext
    from traderunner.dashboard.pages import Page


def _nav_id(page: Page) -> str:
    return f"nav-{page.title.lower()}"


def _user_box() -> Any:
    info = current_session().info if has_request_context() else None
    if info is None:
        return html.Div(className="user-box")
    return html.Div(
        [
            html.Div(
                [
                    html.Span(info.user[:1].upper(), className="avatar"),
                    html.Div(
                        [
                            html.Div(info.user, className="user-name", id="current-user"),
                            html.Div("admin" if info.admin else "user", className="muted small"),
                        ]
                    ),
                ],
                className="user-line",
            ),
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf_token", value=info.csrf),
                    html.Button(
                        "Log out", type="submit", className="button ghost small", id="logout-button"
                    ),
                ],
                method="POST",
                action="/logout",
                id="logout-form",
            ),
        ],
        className="user-box",
    )


def shell(pages: Sequence[Page]) -> Callable[[], Any]:
    """The app's layout function (called per page load, inside the request)."""

    def layout() -> Any:
        links = [
            dcc.Link(
                [html.Span(p.glyph, className="nav-glyph"), html.Span(p.title)],
                href=p.path,
                id=_nav_id(p),
                className="nav-link",
                title=p.summary,
            )
            for p in pages
        ]
        return html.Div(
            [
                dcc.Location(id="url"),
                html.Aside(
                    [
                        html.Div(
                            [html.Span("◆", className="brand-mark"), "traderunner"],
                            className="brand",
                        ),
                        html.Nav(links, className="nav"),
                        html.Div(className="spacer"),
                        _user_box(),
                        html.Div(f"v{__version__}", className="muted small version"),
                    ],
                    className="sidebar",
                ),
                html.Main(html.Div(id="page-content"), className="content"),
            ],
            className="shell",
        )

    return layout


def register_router(app: Dash, pages: Sequence[Page], ctx: DashboardContext) -> None:
    by_path = {p.path: p for p in pages}
    for p in pages:
        for alias in p.aliases:
            by_path[alias] = p

    @app.callback(
        Output("page-content", "children"),
        *[Output(_nav_id(p), "className") for p in pages],
        Input("url", "pathname"),
    )
    def route(pathname: str | None) -> tuple[Any, ...]:
        path = (pathname or "/").rstrip("/") or "/"
        page = by_path.get(path)
        rest = ""
        if page is None:
            head, _, rest = path.lstrip("/").partition("/")
            found = by_path.get(f"/{head}")
            page = found if found is not None and found.detail is not None and rest else None
        classes = ["nav-link active" if p is page else "nav-link" for p in pages]
        if page is None:
            content = html.Div(
                [
                    page_header("Not found", f"No page at {path}."),
                    empty("Pick a page on the left."),
                ],
                className="page",
                id="page-not-found",
            )
        elif rest and page.detail is not None:
            content = page.detail(ctx, rest)
        else:
            content = page.layout(ctx)
        return (content, *classes)

    for p in pages:
        if p.register is not None:
            p.register(app, ctx)
