"""Backtests: the form that queues a backtest job, and the live list of the user's jobs.

Submitting goes through ``JobClient.submit`` only (the dashboard never runs a backtest): every
field is checked first and each error is shown beside its field, then the client checks the
whole spec against the store; nothing is written or queued unless both pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash import ALL, Input, Output, State, html, no_update

from traderunner.dashboard import components as ui
from traderunner.dashboard import forms, joblist
from traderunner.dashboard.pages import Page
from traderunner.dashboard.web import current_user
from traderunner.domain.jobs import JobKind
from traderunner.errors import ParameterError, TraderunnerError

if TYPE_CHECKING:
    from dash import Dash

    from traderunner.dashboard.context import DashboardContext

PREFIX = "bt"


def choices(ctx: DashboardContext) -> forms.StoreChoices:
    return forms.StoreChoices(tuple(ctx.store.candles.list_series()))


def layout(ctx: DashboardContext) -> Any:
    found = choices(ctx)
    form: Any
    if not found.series:
        form = ui.empty(
            "The store holds no candles to backtest on.",
            "Load some with 'traderunner data demo' or 'traderunner data import FILE'.",
        )
    else:
        form = html.Div(
            forms.job_form(PREFIX, found, grid=False, submit_label="Queue backtest"),
            className="job-form",
        )
    return html.Div(
        [
            ui.page_header(
                "Backtests",
                "Queue a backtest on the workers and follow it until its result is stored.",
            ),
            html.Div(
                [
                    ui.card("New backtest", form, subtitle="runs as a durable job"),
                    ui.card(
                        "Jobs",
                        joblist.job_list(PREFIX),
                        subtitle="live from the job hashes; everyone's for an admin",
                    ),
                ],
                className="row form-and-list",
            ),
        ],
        className="page",
        id="page-backtests",
    )


def register_form(app: Dash, ctx: DashboardContext, prefix: str, *, grid: bool) -> None:
    """The callbacks a job form needs: parameters per strategy, symbols per timeframe."""

    @app.callback(
        Output(f"{prefix}-params", "children"),
        Input(forms.field_id(prefix, "strategy"), "value"),
        prevent_initial_call=True,
    )
    def strategy_params(strategy: str | None) -> Any:
        return forms.param_fields(prefix, strategy, grid=grid)

    @app.callback(
        Output(forms.field_id(prefix, "symbols"), "options"),
        Output(forms.field_id(prefix, "symbols"), "value"),
        Input(forms.field_id(prefix, "timeframe"), "value"),
        State(forms.field_id(prefix, "symbols"), "value"),
        prevent_initial_call=True,
    )
    def timeframe_symbols(timeframe: str | None, chosen: list[str] | None) -> Any:
        options = forms.symbol_options(choices(ctx), timeframe)
        known = {o["value"] for o in options}
        return options, [s for s in chosen or [] if s in known]

    @app.callback(
        Output(f"{prefix}-period-hint", "children"),
        Input(forms.field_id(prefix, "symbols"), "value"),
        State(forms.field_id(prefix, "timeframe"), "value"),
        prevent_initial_call=True,
    )
    def period_hint(symbols: list[str] | None, timeframe: str | None) -> str:
        return forms.period_hint(choices(ctx), timeframe, symbols or [])


def form_states(prefix: str) -> list[State]:
    return [
        State(forms.field_id(prefix, "strategy"), "value"),
        State(forms.field_id(prefix, "timeframe"), "value"),
        State(forms.field_id(prefix, "symbols"), "value"),
        State(f"{prefix}-start", "value"),
        State(f"{prefix}-end", "value"),
        State({"type": f"{prefix}-param", "name": ALL}, "value"),
        State({"type": f"{prefix}-param", "name": ALL}, "id"),
        State(f"{prefix}-opt-fill", "value"),
        State(f"{prefix}-opt-direction", "value"),
        *[State(f"{prefix}-opt-{n}", "value") for n in forms.OPTION_NAMES],
        State(f"{prefix}-name", "value"),
        State(f"{prefix}-queue", "value"),
        State(f"{prefix}-level", "value"),
        State(f"{prefix}-fetch", "value"),
        State(f"{prefix}-fetch-symbols", "value"),
    ]


def form_outputs(prefix: str) -> list[Output]:
    return [
        *[Output(forms.error_id(prefix, f), "children") for f in forms.FIELDS],
        Output({"type": f"{prefix}-param-error", "name": ALL}, "children"),
        Output(f"{prefix}-error", "children"),
        Output(f"{prefix}-status", "children"),
        Output(f"{prefix}-jobs-poke", "data", allow_duplicate=True),
    ]


def submit_form(
    ctx: DashboardContext, prefix: str, values: tuple[Any, ...], *, grid: bool
) -> tuple[Any, ...]:
    """Check the form's values, submit the job; the callback's outputs (see form_outputs)."""
    from traderunner.jobs.checks import check_fields

    strategy, timeframe, symbols, start, end, param_values, param_ids, fill, direction = values[:9]
    raw_options = dict(
        zip(forms.OPTION_NAMES, values[9 : 9 + len(forms.OPTION_NAMES)], strict=True)
    )
    name, queue, level, fetch, fetch_symbols = values[9 + len(forms.OPTION_NAMES) :]
    if fetch:
        typed = [t.strip() for t in str(fetch_symbols or "").replace(" ", ",").split(",")]
        symbols = list(dict.fromkeys([*(symbols or []), *(t for t in typed if t)]))
    names = [str(i["name"]) for i in param_ids]
    raw_params = dict(zip(names, param_values, strict=True))
    errors, parsed = check_fields(
        strategy=strategy,
        symbols=symbols,
        timeframe=timeframe,
        start=start,
        end=end,
        params=None if grid else raw_params,
        grid=raw_params if grid else None,
        options=raw_options,
    )
    general = ""
    job = None
    if not errors:
        options = forms.option_values(fill, direction, parsed["options"])
        spec: dict[str, Any] = {
            "kind": "sweep" if grid else "backtest",
            "strategy": strategy,
            "symbols": list(symbols or []),
            "timeframe": timeframe,
            "start": (start or "").strip() or None,
            "end": (end or "").strip() or None,
            "options": options,
            "name": (name or "").strip(),
        }
        if fetch:
            spec["fetch"] = fetch
        if grid:
            spec["grid"] = parsed["grid"]
        else:
            spec["params"] = parsed["params"]
        try:
            if grid and not parsed["grid"]:
                raise ParameterError(
                    "give at least one parameter its values to sweep: 5:50:5 or 5,10,20"
                )
            job = ctx.jobs().submit(spec, queue=queue, level=int(level or 0), owner=current_user())
        except TraderunnerError as exc:
            message = str(exc)
            where = forms.field_of(message, names)
            if where is not None:
                errors[f"{'grid' if grid else 'param'}:{where}"] = message
            elif message.startswith("fetch needs the first day"):
                errors["period"] = message
            elif "candles for" in message or "has data from" in message:
                errors["period" if "has data from" in message else "symbols"] = message
            else:
                general = message
    param_key = "grid" if grid else "param"
    fixed = [errors.get(f, "") for f in forms.FIELDS]
    per_param = [errors.get(f"{param_key}:{n}", "") for n in names]
    if job is None:
        if not general and errors:
            general = f"{len(errors)} field(s) need fixing: nothing was queued"
        return (*fixed, per_param, general, "", no_update)
    what = f"{job.spec.get('combinations', '')} combinations · " if grid else ""
    status = html.Span(
        [
            f"queued {what}job ",
            html.Code(job.id[:12]),
            " · ",
            html_link(job.id, grid),
        ],
        id=f"{prefix}-queued",
        title=job.id,
    )
    return (*fixed, per_param, "", status, job.id)


def html_link(job_id: str, grid: bool) -> Any:
    from dash import dcc

    return dcc.Link("open", href=f"/{'sweeps' if grid else 'runs'}/{job_id}")


def register(app: Dash, ctx: DashboardContext) -> None:
    register_form(app, ctx, PREFIX, grid=False)
    joblist.register(app, ctx, PREFIX, [JobKind.BACKTEST])

    @app.callback(
        *form_outputs(PREFIX),
        Input(f"{PREFIX}-submit", "n_clicks"),
        *form_states(PREFIX),
        prevent_initial_call=True,
    )
    def submit(clicks: int | None, *values: Any) -> tuple[Any, ...]:
        if not clicks:
            return tuple(no_update for _ in range(len(forms.FIELDS) + 4))
        return submit_form(ctx, PREFIX, values, grid=False)


PAGE = Page(
    path="/backtests",
    aliases=("/",),
    title="Backtests",
    glyph="▶",
    summary="submit backtests and watch them run",
    layout=layout,
    register=register,
)
