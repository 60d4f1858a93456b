"""The live job list of the Backtests and Sweeps pages: state, progress bars, cancel and retry.

Polled (``dcc.Interval``): every tick reads one page of jobs through ``JobClient.list`` (the
store's rows, with the live progress of the unfinished ones from their Redis hashes in one
pipelined round trip) and redraws only when something changed. Fast while a job is unfinished
(``FAST_MS``), slow otherwise. Everything shown comes from the store and Redis, so a reload or
a restarted dashboard shows the same jobs. A user sees their own jobs; an admin everyone's.
Cancel and retry act as the logged-in user (``JobClient.cancel/retry(actor=...)``).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from dash import ALL, Input, Output, State, dcc, html, no_update
from dash import ctx as callback_ctx

from traderunner.dashboard import components as ui
from traderunner.dashboard.web import current_is_admin, current_user
from traderunner.domain.jobs import JobKind, JobRecord, JobState
from traderunner.errors import TraderunnerError

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

PAGE_SIZE = 10
FAST_MS = 500
SLOW_MS = 3000

_TONE = {
    JobState.QUEUED: "",
    JobState.RUNNING: "accent",
    JobState.SUCCEEDED: "good",
    JobState.FAILED: "bad",
    JobState.CANCELLED: "warn",
}


def job_list(prefix: str) -> html.Div:
    """The list's container; its rows arrive with the first tick (at once)."""
    return html.Div(
        [
            dcc.Interval(id=f"{prefix}-jobs-tick", interval=FAST_MS, n_intervals=0),
            dcc.Store(id=f"{prefix}-jobs-page", data=0),
            dcc.Store(id=f"{prefix}-jobs-sig", data=""),
            dcc.Store(id=f"{prefix}-jobs-poke", data=0),
            html.Div(id=f"{prefix}-jobs", className="jobs"),
            html.Div(
                [
                    html.Button("‹ newer", id=f"{prefix}-jobs-newer", className="button ghost xs"),
                    html.Span(id=f"{prefix}-jobs-range", className="muted small"),
                    html.Button("older ›", id=f"{prefix}-jobs-older", className="button ghost xs"),
                ],
                className="pager",
            ),
            html.Div(id=f"{prefix}-jobs-message", className="form-status", role="status"),
        ]
    )


def _when(record: JobRecord) -> str:
    stamp = record.created_at
    return "" if stamp is None else stamp.strftime("%m-%d %H:%M:%S")


def _what(record: JobRecord) -> str:
    spec = record.spec
    symbols = ", ".join(spec.get("symbols") or [])
    name = f" “{spec['name']}”" if spec.get("name") else ""
    if record.kind is JobKind.SWEEP:
        from traderunner.reports.text import grid_text

        name = f"{name} {grid_text(spec.get('grid') or {})}"
    return (
        f"{spec.get('strategy', record.kind.value)}{name} · {symbols} · {spec.get('timeframe', '')}"
    )


def _link(prefix: str, record: JobRecord) -> str:
    return f"/sweeps/{record.id}" if record.kind is JobKind.SWEEP else f"/runs/{record.id}"


def _row(prefix: str, record: JobRecord, *, show_owner: bool) -> html.Tr:
    share = 1.0 if record.state is JobState.SUCCEEDED else record.progress
    tone = _TONE[record.state]
    actions: list[Any] = [
        dcc.Link(
            "open", href=_link(prefix, record), className="button ghost xs", id=f"open-{record.id}"
        )
    ]
    if not record.state.terminal:
        actions.append(
            html.Button(
                "cancel",
                id={"type": f"{prefix}-job-action", "action": "cancel", "job": record.id},
                className="button ghost xs",
            )
        )
    elif record.state in (JobState.FAILED, JobState.CANCELLED):
        actions.append(
            html.Button(
                "retry",
                id={"type": f"{prefix}-job-action", "action": "retry", "job": record.id},
                className="button ghost xs",
            )
        )
    message = record.error or record.message
    cells = [
        html.Td(
            [
                html.Div(_what(record), className="job-what"),
                html.Div(
                    [html.Span(record.id[:12], className="mono"), " · ", _when(record)],
                    className="muted small",
                ),
            ]
        ),
    ]
    if show_owner:
        cells.append(html.Td(record.owner or "—", className="small"))
    cells += [
        html.Td(ui.pill(record.state.value, tone), className="job-state"),
        html.Td(
            [
                html.Div(
                    [
                        html.Div(
                            className=f"progress-fill {tone}",
                            style={"width": f"{share * 100:.1f}%"},
                        )
                    ],
                    className="progress",
                ),
                html.Div(
                    [html.Span(f"{share * 100:.0f}%"), html.Span(message[:90], title=message)],
                    className="progress-note",
                ),
            ],
            className="job-progress",
        ),
        html.Td(actions, className="job-actions"),
    ]
    return html.Tr(cells, id=f"job-{record.id}", className=f"job-row state-{record.state.value}")


def render(prefix: str, records: list[JobRecord], *, show_owner: bool) -> Any:
    if not records:
        return ui.empty("No jobs yet.", "Submit one with the form; it appears here at once.")
    head = ["job"] + (["owner"] if show_owner else []) + ["state", "progress", ""]
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in head])),
            html.Tbody([_row(prefix, r, show_owner=show_owner) for r in records]),
        ],
        className="table jobs-table",
        id=f"{prefix}-jobs-table",
    )


def register(app: Dash, ctx: DashboardContext, prefix: str, kinds: list[JobKind]) -> None:
    @app.callback(
        Output(f"{prefix}-jobs", "children"),
        Output(f"{prefix}-jobs-sig", "data"),
        Output(f"{prefix}-jobs-tick", "interval"),
        Output(f"{prefix}-jobs-range", "children"),
        Input(f"{prefix}-jobs-tick", "n_intervals"),
        Input(f"{prefix}-jobs-page", "data"),
        Input(f"{prefix}-jobs-poke", "data"),
        State(f"{prefix}-jobs-sig", "data"),
    )
    def refresh(_: int, page: int | None, __: Any, sig: str | None) -> tuple[Any, ...]:
        admin = current_is_admin()
        try:
            found = ctx.jobs().list(
                owner=None if admin else current_user(),
                kinds=kinds,
                limit=PAGE_SIZE,
                offset=int(page or 0) * PAGE_SIZE,
            )
        except TraderunnerError as exc:
            return ui.empty(f"cannot read the jobs: {exc}"), "", SLOW_MS, ""
        records = list(found.items)
        busy = any(not r.state.terminal for r in records)
        interval = FAST_MS if busy else SLOW_MS
        first = found.offset + 1 if records else 0
        shown = f"{first}-{found.offset + len(records)} of {found.total}"
        digest = hashlib.sha1(
            json.dumps(
                [(r.id, r.state.value, round(r.progress, 3), r.message, r.error) for r in records]
                + [admin, shown]
            ).encode()
        ).hexdigest()
        if digest == sig:
            return no_update, no_update, interval, no_update
        return render(prefix, records, show_owner=admin), digest, interval, shown

    @app.callback(
        Output(f"{prefix}-jobs-page", "data"),
        Input(f"{prefix}-jobs-newer", "n_clicks"),
        Input(f"{prefix}-jobs-older", "n_clicks"),
        State(f"{prefix}-jobs-page", "data"),
        State(f"{prefix}-jobs-range", "children"),
        prevent_initial_call=True,
    )
    def turn(_: Any, __: Any, page: int | None, shown: str | None) -> Any:
        page = int(page or 0)
        if callback_ctx.triggered_id == f"{prefix}-jobs-newer":
            return max(0, page - 1)
        total = int(str(shown or "0").rsplit(" ", 1)[-1] or 0)
        return page + 1 if (page + 1) * PAGE_SIZE < total else page

    @app.callback(
        Output(f"{prefix}-jobs-message", "children"),
        Output(f"{prefix}-jobs-poke", "data", allow_duplicate=True),
        Input({"type": f"{prefix}-job-action", "action": ALL, "job": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def act(clicks: list[int | None]) -> tuple[Any, Any]:
        trigger = callback_ctx.triggered_id
        # A redrawn list brings new buttons (n_clicks None): only a real click acts.
        if not isinstance(trigger, dict) or not callback_ctx.triggered[0].get("value"):
            return no_update, no_update
        job_id, action = str(trigger["job"]), str(trigger["action"])
        client = ctx.jobs()
        try:
            if action == "cancel":
                record = client.cancel(job_id, actor=current_user(), is_admin=current_is_admin())
            else:
                record = client.retry(job_id, actor=current_user(), is_admin=current_is_admin())
        except TraderunnerError as exc:
            return html.Span(str(exc), className="bad"), no_update
        return f"{action}: job {job_id[:12]} is {record.state.value}", job_id + action
