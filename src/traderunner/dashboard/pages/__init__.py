"""The dashboard's pages, in navigation order.

A page is one module with a ``PAGE``: its path, its title and glyph for the navigation, a
``layout(ctx)`` building its content on each visit, and ``register(app, ctx)`` adding its
callbacks once. Adding a page is adding a module and a line to :func:`all_pages`; the shell
(``layout.py``) routes to it and lists it; a page with ``detail`` also answers every path under
its own (``/runs/ID``). Every callback sits behind the login wall
(``web.py``), so pages need no checks of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    glyph: str
    summary: str
    layout: Callable[[DashboardContext], Any]
    register: Callable[[Dash, DashboardContext], None] | None = None
    aliases: tuple[str, ...] = ()
    #: ``detail(ctx, rest)`` builds ``{path}/{rest}`` (a run, a sweep, runs to compare).
    detail: Callable[[DashboardContext, str], Any] | None = None


def all_pages() -> tuple[Page, ...]:
    from traderunner.dashboard.pages import backtests, compare, data, live, runs, sweeps, system

    return (
        backtests.PAGE,
        runs.PAGE,
        compare.PAGE,
        sweeps.PAGE,
        data.PAGE,
        live.PAGE,
        system.PAGE,
    )
