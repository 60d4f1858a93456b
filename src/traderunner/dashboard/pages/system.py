"""System: both Redis servers, the queues, the workers, the rate limits and the cache.

Everything is read when the page opens and every few seconds after (``REFRESH_S``); the
workers, whose broadcast waits up to its timeout, load in their own callback so the rest of the
page never waits for them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from traderunner.dashboard import components as ui
from traderunner.dashboard.pages import Page
from traderunner.dashboard.readmodels import system as rm

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

REFRESH_S = 5
WORKERS_REFRESH_S = 5
HISTORY_POINTS = 120  # ten minutes of samples at REFRESH_S


def _snapshot(ctx: DashboardContext) -> dict[str, Any]:
    clients = ctx.redis
    durable = rm.redis_status(clients.durable, role="durable", url=clients.urls.durable)
    if clients.cache is clients.durable:
        cache = rm.RedisStatus(
            role="cache", url=durable.url, reachable=False, error="shares the durable server"
        )
    else:
        cache = rm.redis_status(clients.cache, role="cache", url=clients.urls.cache)
    try:
        limits = ctx.eodhd.usage()
        limits_error = ""
    except Exception as exc:
        limits, limits_error = [], " ".join(str(exc).split())
    return {
        "durable": durable,
        "cache": cache,
        "queues": rm.queue_depths(clients.durable, clients.keys),
        "cache_stats": rm.cache_figures(clients.cache, clients.keys, clients.urls.cache),
        "logins": rm.login_activity(ctx.store, ctx.settings.dashboard_login_window),
        "limits": limits,
        "limits_error": limits_error,
        "at": datetime.now(UTC),
    }


# -- rendering -----------------------------------------------------------------------------


def _kpis(snap: dict[str, Any]) -> list[Any]:
    durable: rm.RedisStatus = snap["durable"]
    cache: rm.RedisStatus = snap["cache"]
    queues: rm.QueueDepths = snap["queues"]
    figures: rm.CacheFigures = snap["cache_stats"]
    logins: rm.LoginActivity = snap["logins"]

    def server_kpi(status: rm.RedisStatus, label: str) -> Any:
        if not status.reachable:
            return ui.kpi(label, "down", status.error[:80], tone="bad")
        tone = "warn" if status.problems else "good"
        note = f"{status.used_memory_human} · {status.ops_per_sec} ops/s"
        return ui.kpi(label, "up", note, tone=tone)

    ratio = figures.stats.hit_ratio if figures.stats else None
    return [
        server_kpi(durable, "Durable Redis"),
        server_kpi(cache, "Cache Redis"),
        ui.kpi(
            "Queued messages",
            "—" if queues.error else f"{queues.total:,}",
            queues.error[:80]
            if queues.error
            else " · ".join(f"{q} {n}" for q, n in queues.depths.items()),
            tone="bad" if queues.error else "",
        ),
        ui.kpi(
            "Cache hit rate",
            ui.percent(ratio),
            figures.error[:80]
            if figures.error
            else f"{figures.stats.hits + figures.stats.local_hits:,} hits · "
            f"{figures.stats.misses:,} misses"
            if figures.stats
            else "",
            tone="bad" if figures.error else "",
        ),
        ui.kpi(
            "Failed logins",
            f"{logins.failed:,}",
            f"last {ui.human_duration(logins.window_s)} · {logins.counts.get('ok', 0)} ok",
            tone="warn" if logins.counts.get("limited") else "",
        ),
    ]


def _server_card(status: rm.RedisStatus, title: str, subtitle: str) -> Any:
    if not status.reachable:
        return ui.card(
            title,
            ui.empty(status.error or "not reachable", f"at {status.url}"),
            subtitle=subtitle,
            tools=ui.pill("down", "bad"),
        )
    problems = status.problems
    tools = ui.pill("attention", "warn") if problems else ui.pill("healthy", "good")
    memory = (
        f"{status.used_memory_human} of {ui.human_bytes(status.maxmemory)}"
        if status.maxmemory
        else f"{status.used_memory_human} · no maxmemory set"
    )
    rows: list[tuple[str, Any]] = [
        ("address", html.Code(status.url)),
        ("version", status.version),
        ("uptime", ui.human_duration(status.uptime_s)),
        (
            "memory",
            html.Div(
                [
                    html.Span(memory),
                    ui.meter(status.used_memory, status.maxmemory) if status.maxmemory else None,
                ]
            ),
        ),
        ("eviction policy", status.policy),
        ("persistence", status.persistence),
        ("ops/s", f"{status.ops_per_sec:,}"),
        ("clients", f"{status.clients:,}"),
        ("keys", f"{status.keys:,}"),
        ("evicted keys", f"{status.evicted_keys:,}"),
        ("keyspace hit rate", ui.percent(status.hit_ratio)),
    ]
    if status.rdb_last_save is not None and status.role == "durable":
        rows.append(("last RDB save", status.rdb_last_save.strftime("%Y-%m-%d %H:%M:%S UTC")))
    body: list[Any] = [ui.facts(rows)]
    if problems:
        body.append(html.Ul([html.Li(p) for p in problems], className="problems"))
    return ui.card(title, *body, subtitle=subtitle, tools=tools)


def _servers(snap: dict[str, Any]) -> list[Any]:
    return [
        _server_card(snap["durable"], "Durable Redis", "broker, job state, sessions, rate limits"),
        _server_card(snap["cache"], "Cache Redis", "candles, series, configs, responses"),
    ]


def _limits(snap: dict[str, Any], ctx: DashboardContext) -> list[Any]:
    rows: list[Any] = []
    if snap["limits_error"]:
        rows.append(ui.empty(snap["limits_error"]))
    for usage in snap["limits"]:
        rows.append(
            html.Div(
                [
                    html.Div(
                        [
                            html.Span(f"EODHD · per {ui.window_name(usage.window_s)}"),
                            html.Span(f"{usage.used:,} / {usage.limit:,}", className="mono"),
                        ],
                        className="limit-head",
                    ),
                    ui.meter(usage.used, usage.limit),
                    html.Div(
                        f"{usage.remaining:,} left"
                        + (
                            f" · frees in {ui.human_duration(usage.reset_in_s)}"
                            if usage.used
                            else ""
                        ),
                        className="muted small",
                    ),
                ],
                className="limit",
            )
        )
    logins: rm.LoginActivity = snap["logins"]
    settings = ctx.settings
    rows.append(
        html.Div(
            [
                html.Div(
                    [
                        html.Span("Dashboard logins"),
                        html.Span(
                            f"{settings.dashboard_login_user_limit} failures per name, "
                            f"{settings.dashboard_login_address_limit} attempts per address "
                            f"per {ui.human_duration(settings.dashboard_login_window)}",
                            className="muted small",
                        ),
                    ],
                    className="limit-head",
                ),
                ui.facts(
                    [
                        ("succeeded", f"{logins.counts.get('ok', 0):,}"),
                        ("wrong password", f"{logins.counts.get('bad_password', 0):,}"),
                        ("unknown user", f"{logins.counts.get('unknown_user', 0):,}"),
                        ("refused by the limit", f"{logins.counts.get('limited', 0):,}"),
                    ]
                ),
            ],
            className="limit",
        )
    )
    return [ui.card("Rate limits", *rows, subtitle="shared by every process")]


def _cache(snap: dict[str, Any]) -> list[Any]:
    figures: rm.CacheFigures = snap["cache_stats"]
    if figures.stats is None:
        return [ui.card("Market-data cache", ui.empty(figures.error or "no figures"))]
    st = figures.stats
    rows = []
    for kind, counts in sorted(st.kinds.items()):
        hits = counts.get("hits", 0) + counts.get("local_hits", 0)
        reads = hits + counts.get("misses", 0)
        rows.append(
            {
                "kind": kind,
                "hits": f"{counts.get('hits', 0):,} + {counts.get('local_hits', 0):,}",
                "misses": counts.get("misses", 0),
                "errors": counts.get("errors", 0),
                "store_loads": counts.get("store_loads", 0),
                "hit_rate": round(hits / reads * 100, 1) if reads else None,
            }
        )
    columns: list[dict[str, Any]] = [
        {"field": "kind", "headerName": "kind"},
        {"field": "hits", "headerName": "hits (Redis + local)", "minWidth": 130},
        {"field": "misses", "type": "numericColumn"},
        {"field": "errors", "type": "numericColumn"},
        {"field": "store_loads", "headerName": "store loads", "type": "numericColumn"},
        {"field": "hit_rate", "headerName": "hit rate %", "type": "numericColumn"},
    ]
    body = [
        ui.facts(
            [
                ("hit rate", ui.percent(st.hit_ratio)),
                ("keys", f"{st.keys:,}"),
                ("memory", st.memory_human or ui.human_bytes(st.memory_used)),
                ("policy", st.policy),
                ("evicted keys", f"{st.evicted_keys:,}"),
            ]
        ),
        ui.grid("system-cache-grid", columns, rows, filter=False)
        if rows
        else ui.empty("no cache reads counted yet", "they appear once a worker reads candles"),
    ]
    return [ui.card("Market-data cache", *body, subtitle="summed over every process")]


def _history(snap: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    data = previous or {"t": [], "durable": [], "cache": []}
    data["t"] = [*data["t"], snap["at"].isoformat()][-HISTORY_POINTS:]
    for role in ("durable", "cache"):
        status: rm.RedisStatus = snap[role]
        value = status.ops_per_sec if status.reachable else None
        data[role] = [*data[role], value][-HISTORY_POINTS:]
    return data


def _ops_figure(history: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    for role, colour in (("durable", ui.ACCENT), ("cache", ui.SERIES_COLOURS[1])):
        fig.add_trace(
            go.Scatter(
                x=history["t"],
                y=history[role],
                name=role,
                mode="lines+markers",
                line={"color": colour, "width": 2},
                marker={"size": 5},
            )
        )
    fig.update_yaxes(rangemode="tozero", title_text="ops/s")
    if history["t"]:
        # A fixed ten-minute window ending now: the first samples read as the newest.
        last = datetime.fromisoformat(history["t"][-1])
        span = timedelta(seconds=REFRESH_S * HISTORY_POINTS)
        fig.update_xaxes(range=[last - span, last + timedelta(seconds=REFRESH_S)])
    fig.update_xaxes(tickformat="%H:%M")
    return ui.figure_layout(fig, height=240)


def _queue_figure(queues: rm.QueueDepths) -> go.Figure:
    names = list(queues.depths) or ["interactive", "batch"]
    values = [queues.depths.get(n, 0) for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            marker_color=[ui.ACCENT, ui.SERIES_COLOURS[2]][: len(names)],
            text=values,
            textposition="outside",
        )
    )
    top = max([*values, 0])
    fig.update_yaxes(title_text="messages", range=[0, max(5, top * 1.25)])
    return ui.figure_layout(fig, height=240, legend=False)


def _workers_view(found: rm.Workers) -> Any:
    if found.error:
        return ui.empty(f"cannot ask the workers: {found.error}")
    if not found.workers:
        return ui.empty(
            f"no worker answered within {found.timeout_s:g} s",
            "start one with: traderunner worker",
        )
    rows = [
        {
            "name": w.name,
            "queues": ", ".join(w.queues),
            "pool": w.pool,
            "concurrency": w.concurrency,
            "running": w.running,
            "processed": w.processed,
            "pid": w.pid,
            "uptime": ui.human_duration(w.uptime_s),
        }
        for w in found.workers
    ]
    columns: list[dict[str, Any]] = [
        {"field": "name", "minWidth": 220},
        {"field": "queues"},
        {"field": "pool"},
        {"field": "concurrency", "type": "numericColumn"},
        {"field": "running", "headerName": "running jobs", "type": "numericColumn"},
        {"field": "processed", "type": "numericColumn"},
        {"field": "pid", "type": "numericColumn"},
        {"field": "uptime"},
    ]
    return html.Div(
        [
            ui.grid("system-workers-grid", columns, rows, row_id="name", filter=False),
            html.Div(
                f"{len(rows)} worker(s) answered within {found.timeout_s:g} s, asked at "
                f"{found.at.strftime('%H:%M:%S')} UTC",
                className="muted small grid-note",
            ),
        ]
    )


def layout(ctx: DashboardContext) -> Any:
    ctx.workers().latest(wait=0)  # start asking now, while the rest of the page is built
    snap = _snapshot(ctx)
    history = _history(snap, None)
    flower = ctx.settings.dashboard_flower_url
    return html.Div(
        [
            ui.page_header(
                "System",
                "The machinery behind the jobs: Redis, queues, workers, limits and cache.",
                html.A(
                    "Open Flower ↗",
                    href=flower,
                    target="_blank",
                    className="button ghost",
                    id="flower-link",
                    rel="noopener",
                ),
                html.Span(
                    f"updated {snap['at'].strftime('%H:%M:%S')} UTC",
                    id="system-updated",
                    className="muted small",
                ),
            ),
            dcc.Interval(id="system-tick", interval=REFRESH_S * 1000),
            dcc.Interval(id="system-workers-tick", interval=WORKERS_REFRESH_S * 1000),
            dcc.Store(id="system-history", data=history),
            html.Div(_kpis(snap), id="system-kpis", className="kpis"),
            html.Div(_servers(snap), id="system-servers", className="row two"),
            html.Div(
                [
                    ui.card(
                        "Operations per second",
                        ui.chart("system-ops", _ops_figure(history)),
                        subtitle=f"sampled every {REFRESH_S} s while this page is open",
                    ),
                    ui.card(
                        "Queue depth",
                        ui.chart("system-queues", _queue_figure(snap["queues"])),
                        subtitle="messages waiting, all priorities",
                    ),
                ],
                className="row two",
            ),
            ui.card(
                "Workers",
                dcc.Loading(
                    html.Div(ui.empty("asking the workers…"), id="system-workers"),
                    type="dot",
                    color=ui.ACCENT,
                ),
                subtitle=f"Celery remote control, every {REFRESH_S} s while a page is open",
            ),
            html.Div(
                [
                    html.Div(_limits(snap, ctx), id="system-limits"),
                    html.Div(_cache(snap), id="system-cache"),
                ],
                className="row two",
            ),
            ui.card(
                "Streams",
                ui.empty(
                    "The signal bus is not built yet.",
                    "Stream lag and pending entries per consumer group appear here with "
                    "the live path.",
                ),
            ),
        ],
        className="page",
        id="page-system",
    )


def register(app: Dash, ctx: DashboardContext) -> None:
    @app.callback(
        Output("system-kpis", "children"),
        Output("system-servers", "children"),
        Output("system-ops", "figure"),
        Output("system-queues", "figure"),
        Output("system-limits", "children"),
        Output("system-cache", "children"),
        Output("system-history", "data"),
        Output("system-updated", "children"),
        Input("system-tick", "n_intervals"),
        State("system-history", "data"),
        prevent_initial_call=True,
    )
    def refresh(_: int, previous: dict[str, Any] | None) -> tuple[Any, ...]:
        snap = _snapshot(ctx)
        history = _history(snap, previous)
        return (
            _kpis(snap),
            _servers(snap),
            _ops_figure(history),
            _queue_figure(snap["queues"]),
            _limits(snap, ctx),
            _cache(snap),
            history,
            f"updated {snap['at'].strftime('%H:%M:%S')} UTC",
        )

    @app.callback(Output("system-workers", "children"), Input("system-workers-tick", "n_intervals"))
    def show_workers(_: int | None) -> Any:
        found = ctx.workers().latest()
        if found is None:
            return ui.empty("the workers have not answered yet")
        return _workers_view(found)


PAGE = Page(
    path="/system",
    title="System",
    glyph="⚙",
    summary="Redis, queues, workers, limits",
    layout=layout,
    register=register,
)
