"""The Dash app factory.

:func:`create_app` connects (store, both Redis roles, the login limits), builds the Flask
server with its login wall (``web.py``), mounts Dash on it with the shell and every page, and
returns both the app and the context to close when serving stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dash import Dash

from traderunner.dashboard.context import DashboardContext, open_context, secret_key
from traderunner.dashboard.layout import register_router, shell
from traderunner.dashboard.pages import all_pages
from traderunner.dashboard.web import CSRF_COOKIE, CSRF_HEADER, create_server

if TYPE_CHECKING:
    from traderunner.config import Settings

ASSETS = Path(__file__).parent / "assets"


def create_app(
    settings: Settings, *, ctx: DashboardContext | None = None
) -> tuple[Dash, DashboardContext]:
    """The dashboard for ``settings``; close the returned context when done with the app."""
    secret = secret_key(settings)
    ctx = ctx or open_context(settings)
    try:
        server = create_server(
            accounts=ctx.accounts,
            sessions=ctx.sessions,
            secret=secret,
            proxy_hops=settings.dashboard_proxy_hops,
            health=ctx.health,
        )
        app = Dash(
            "traderunner.dashboard",
            server=server,  # type: ignore[arg-type]  # Dash's hint omits a Flask app
            title="traderunner",
            update_title=None,  # type: ignore[arg-type]  # None: keep the title while loading
            assets_folder=str(ASSETS),
            serve_locally=True,
            suppress_callback_exceptions=True,
            csrf_token_name=CSRF_COOKIE,
            csrf_header_name=CSRF_HEADER,
        )
        pages = all_pages()
        app.layout = shell(pages)
        register_router(app, pages, ctx)
    except Exception:
        ctx.close()
        raise
    return app, ctx
