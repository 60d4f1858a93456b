"""Serving the dashboard with waitress, a production WSGI server (threads, no fork).

waitress rather than gunicorn: it is pure Python with no fork, so the one process keeps one
connection pool per Redis role and one store engine, and it runs the same wherever Python
runs. The dashboard's requests are short (reads of Redis and the store); slow work is jobs.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from traderunner.errors import UserInputError

if TYPE_CHECKING:
    from traderunner.config import Settings

log = logging.getLogger(__name__)

THREADS = 8


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    threads: int = THREADS,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Build the app and serve it until Ctrl-C or SIGTERM; everything is closed on the way out.

    A port that is taken or an address that cannot be bound is one UserInputError.
    """
    from waitress import create_server

    from traderunner.dashboard.app import create_app

    app, ctx = create_app(settings)
    try:
        try:
            server = create_server(
                app.server,
                host=host,
                port=port,
                threads=threads,
                ident="traderunner",
                channel_timeout=60,
            )
        except OSError as exc:
            raise UserInputError(
                f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}; pick "
                "another --port (or --host)"
            ) from None
        previous = signal.signal(signal.SIGTERM, _interrupt)
        if on_ready is not None:
            on_ready(f"http://{host}:{port}")
        try:
            server.run()
        except KeyboardInterrupt:
            log.info("dashboard stopping")
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.close()
    finally:
        ctx.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (a supervisor's stop) ends the loop the way Ctrl-C does, so the context closes.
    raise KeyboardInterrupt
