"""The job forms of the Backtests and Sweeps pages, built from the strategy registry and the
store, and read back into a job spec.

Each field has an error line beside it (``{prefix}-{field}-error``; strategy parameters use the
pattern ids ``{"type": "{prefix}-param"|"{prefix}-param-error", "name": NAME}``). The values are
checked field by field with :func:`traderunner.jobs.checks.check_fields` (every error at once),
then the spec is submitted through ``JobClient.submit``, which checks it whole against the store
before anything is written or queued; its error is the form's own line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dash import dcc, html

from traderunner.strategies import available_strategies, get_strategy

if TYPE_CHECKING:
    from traderunner.store.series import SeriesInfo
    from traderunner.strategies.base import ParamSpec

#: Engine options on the form: (name, label, hint, placeholder (the default)).
COST_OPTIONS = (
    ("cash", "Cash", "starting cash, split over the symbols", "100000"),
    ("size", "Size", "fraction of equity per entry, (0, 1]", "1"),
    ("fees_bps", "Fees (bps)", "per fill, of the notional", "0"),
    ("fee_per_order", "Fee per order", "fixed, per fill", "0"),
    ("slippage_bps", "Slippage (bps)", "every fill moved against you", "0"),
)
STOP_OPTIONS = (
    ("stop_loss", "Stop-loss", "fraction against the entry, e.g. 0.02", "none"),
    ("take_profit", "Take-profit", "fraction in favour, e.g. 0.05", "none"),
    ("trailing_stop", "Trailing stop", "fraction from the best price", "none"),
)
OPTION_NAMES = tuple(o[0] for o in (*COST_OPTIONS, *STOP_OPTIONS))
#: The strategy a new form starts with (the classic, when it is registered).
DEFAULT_STRATEGY = "sma_cross"
#: The fixed fields that have an error line, in form order.
FIELDS = ("strategy", "timeframe", "symbols", "period", *(f"option:{n}" for n in OPTION_NAMES))


def field_id(prefix: str, name: str) -> str:
    """``option:cash`` -> ``bt-opt-cash``; ``symbols`` -> ``bt-symbols``."""
    return f"{prefix}-opt-{name[7:]}" if name.startswith("option:") else f"{prefix}-{name}"


def error_id(prefix: str, name: str) -> str:
    return f"{field_id(prefix, name)}-error"


@dataclass(frozen=True, slots=True)
class StoreChoices:
    """What the store offers the form: timeframes, and each one's symbols and range."""

    series: tuple[SeriesInfo, ...]

    @property
    def timeframes(self) -> list[str]:
        order = ["M1", "M5", "M15", "M30", "H1", "H4", "D1"]
        found = {s.timeframe.value for s in self.series}
        return [t for t in order if t in found]

    def symbols(self, timeframe: str | None) -> list[SeriesInfo]:
        return [s for s in self.series if s.timeframe.value == timeframe]


def _field(prefix: str, name: str, label: str, control: Any, hint: str = "") -> html.Div:
    return html.Div(
        [
            html.Label(label, htmlFor=field_id(prefix, name), className="field-label"),
            control,
            html.Div(hint, className="field-hint") if hint else None,
            html.Div(id=error_id(prefix, name), className="field-error", role="alert"),
        ],
        className="field",
    )


def _input(id: Any, placeholder: str = "", value: Any = None) -> dcc.Input:
    return dcc.Input(
        id=id,
        type="text",
        placeholder=placeholder,
        value=value,
        debounce=False,
        className="input",
        autoComplete="off",
    )


def strategy_options() -> list[dict[str, str]]:
    return [
        {"label": f"{name} · {cls.description}" if cls.description else name, "value": name}
        for name, cls in sorted(available_strategies().items())
    ]


def _param_control(prefix: str, spec: ParamSpec, *, grid: bool) -> Any:
    pid = {"type": f"{prefix}-param", "name": spec.name}
    if grid:
        return _input(pid, placeholder=f"{spec.default}  (or 5:50:5, or 5,10,20)")
    if spec.choices:
        return dcc.Dropdown(
            id=pid,
            options=list(spec.choices),
            value=spec.default,
            clearable=False,
            className="select",
        )
    if spec.type is bool:
        return dcc.Dropdown(
            id=pid,
            options=[{"label": "true", "value": "true"}, {"label": "false", "value": "false"}],
            value="true" if spec.default else "false",
            clearable=False,
            className="select",
        )
    return _input(pid, placeholder=str(spec.default))


def param_fields(prefix: str, strategy: str | None, *, grid: bool = False) -> list[Any]:
    """One field per parameter of ``strategy``: its bounds and default beside it; a sweep's
    fields take a list or range of values (blank: the default alone)."""
    if not strategy:
        return [html.P("Choose a strategy.", className="muted")]
    try:
        cls = get_strategy(strategy)
    except Exception as exc:  # a user strategy that stopped loading
        return [html.P(str(exc), className="field-error")]
    out: list[Any] = []
    for spec in cls.param_specs():
        hint = f"{spec.type.__name__} {spec.describe_bounds()} · default {spec.default}"
        if spec.doc:
            hint = f"{hint} · {spec.doc}"
        out.append(
            html.Div(
                [
                    html.Label(spec.name, className="field-label"),
                    _param_control(prefix, spec, grid=grid),
                    html.Div(hint, className="field-hint"),
                    html.Div(
                        id={"type": f"{prefix}-param-error", "name": spec.name},
                        className="field-error",
                        role="alert",
                    ),
                ],
                className="field",
            )
        )
    if not out:
        out.append(html.P("This strategy has no parameters.", className="muted"))
    return out


def _day(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d")


def symbol_options(choices: StoreChoices, timeframe: str | None) -> list[dict[str, str]]:
    return [
        {
            "label": f"{s.symbol}  ({_day(s.first_ns)} .. {_day(s.last_ns)}, {s.count:,} bars)",
            "value": s.symbol,
        }
        for s in choices.symbols(timeframe)
    ]


def period_hint(choices: StoreChoices, timeframe: str | None, symbols: Sequence[str]) -> str:
    found = [s for s in choices.symbols(timeframe) if not symbols or s.symbol in symbols]
    if not found:
        return "blank: all the data"
    lo = min(s.first_ns for s in found)
    hi = max(s.last_ns for s in found)
    return f"YYYY-MM-DD; blank: all the data ({_day(lo)} .. {_day(hi)})"


def job_form(prefix: str, choices: StoreChoices, *, grid: bool, submit_label: str) -> list[Any]:
    """The whole form (see the module docstring)."""
    strategies = strategy_options()
    names = [o["value"] for o in strategies]
    first = DEFAULT_STRATEGY if DEFAULT_STRATEGY in names else (names[0] if names else None)
    timeframes = choices.timeframes
    tf = "M5" if "M5" in timeframes else (timeframes[0] if timeframes else None)
    symbols = symbol_options(choices, tf)
    default_symbols = [symbols[0]["value"]] if symbols else []
    radio = "radio"
    return [
        html.Div(
            [
                _field(
                    prefix,
                    "strategy",
                    "Strategy",
                    dcc.Dropdown(
                        id=field_id(prefix, "strategy"),
                        options=strategies,
                        value=first,
                        clearable=False,
                        className="select",
                    ),
                ),
                _field(
                    prefix,
                    "timeframe",
                    "Timeframe",
                    dcc.Dropdown(
                        id=field_id(prefix, "timeframe"),
                        options=timeframes,
                        value=tf,
                        clearable=False,
                        className="select",
                    ),
                ),
                _field(
                    prefix,
                    "symbols",
                    "Symbols",
                    dcc.Dropdown(
                        id=field_id(prefix, "symbols"),
                        options=symbols,
                        value=default_symbols,
                        multi=True,
                        className="select",
                        placeholder="symbols in the store",
                    ),
                ),
                html.Div(
                    [
                        html.Label("Period (UTC)", className="field-label"),
                        html.Div(
                            [
                                _input(f"{prefix}-start", placeholder="start"),
                                html.Span("to", className="muted"),
                                _input(f"{prefix}-end", placeholder="end"),
                            ],
                            className="inline",
                        ),
                        html.Div(
                            period_hint(choices, tf, default_symbols),
                            id=f"{prefix}-period-hint",
                            className="field-hint",
                        ),
                        html.Div(
                            id=error_id(prefix, "period"), className="field-error", role="alert"
                        ),
                    ],
                    className="field",
                ),
            ],
            className="form-grid",
        ),
        html.Div(
            [
                html.Div(
                    [
                        html.Label("Fetch missing bars first", className="field-label"),
                        dcc.RadioItems(
                            id=f"{prefix}-fetch",
                            options=[
                                {"label": "no", "value": ""},
                                {"label": "EODHD", "value": "eodhd"},
                                {"label": "synthetic", "value": "synthetic"},
                            ],
                            value="",
                            className=radio,
                            inline=True,
                        ),
                        html.Div(
                            "the worker fetches what the store lacks first (the job's progress "
                            "shows it); needs a start date",
                            className="field-hint",
                        ),
                    ],
                    className="field",
                ),
                html.Div(
                    [
                        html.Label("Symbols to fetch", className="field-label"),
                        _input(f"{prefix}-fetch-symbols", placeholder="e.g. AAPL.US, MSFT.US"),
                        html.Div(
                            "added to the symbols above when fetching", className="field-hint"
                        ),
                    ],
                    className="field",
                ),
            ],
            className="form-grid",
        ),
        html.H3("Parameters: values to sweep" if grid else "Parameters", className="form-section"),
        html.Div(
            param_fields(prefix, first, grid=grid),
            id=f"{prefix}-params",
            className="form-grid",
        ),
        html.H3("Fills and costs", className="form-section"),
        html.Div(
            [
                html.Div(
                    [
                        html.Label("Fill", className="field-label"),
                        dcc.RadioItems(
                            id=f"{prefix}-opt-fill",
                            options=[
                                {"label": "next open", "value": "next_open"},
                                {"label": "signal close", "value": "close"},
                            ],
                            value="next_open",
                            className=radio,
                            inline=True,
                        ),
                    ],
                    className="field",
                ),
                html.Div(
                    [
                        html.Label("Direction", className="field-label"),
                        dcc.RadioItems(
                            id=f"{prefix}-opt-direction",
                            options=["long", "short", "both"],
                            value="long",
                            className=radio,
                            inline=True,
                        ),
                    ],
                    className="field",
                ),
                *[
                    _field(
                        prefix, f"option:{n}", label, _input(f"{prefix}-opt-{n}", placeholder), hint
                    )
                    for n, label, hint, placeholder in COST_OPTIONS
                ],
            ],
            className="form-grid",
        ),
        html.H3("Stops", className="form-section"),
        html.Div(
            [
                _field(prefix, f"option:{n}", label, _input(f"{prefix}-opt-{n}", placeholder), hint)
                for n, label, hint, placeholder in STOP_OPTIONS
            ],
            className="form-grid",
        ),
        html.H3("Run", className="form-section"),
        html.Div(
            [
                html.Div(
                    [
                        html.Label("Name", className="field-label"),
                        _input(f"{prefix}-name", placeholder="optional"),
                    ],
                    className="field",
                ),
                html.Div(
                    [
                        html.Label("Queue", className="field-label"),
                        dcc.RadioItems(
                            id=f"{prefix}-queue",
                            options=["interactive", "batch"],
                            value="batch" if grid else "interactive",
                            className=radio,
                            inline=True,
                        ),
                    ],
                    className="field",
                ),
                html.Div(
                    [
                        html.Label("Priority", className="field-label"),
                        dcc.Dropdown(
                            id=f"{prefix}-level",
                            options=[
                                {"label": f"{n}{' (first)' if n == 0 else ''}", "value": n}
                                for n in range(5)
                            ],
                            value=0,
                            clearable=False,
                            className="select",
                        ),
                        html.Div("0 runs first within its queue", className="field-hint"),
                    ],
                    className="field",
                ),
            ],
            className="form-grid",
        ),
        html.Div(
            [
                html.Button(submit_label, id=f"{prefix}-submit", className="button", n_clicks=0),
                html.Div(id=f"{prefix}-status", className="form-status"),
            ],
            className="form-actions",
        ),
        html.Div(id=f"{prefix}-error", className="form-error", role="alert"),
    ]


def option_values(
    fill: str | None, direction: str | None, raw: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"fill": fill or "next_open", "direction": direction or "long"}
    out.update({k: v for k, v in raw.items() if v not in (None, "")})
    return out


def field_of(message: str, names: Sequence[str]) -> str | None:
    """The parameter a whole-spec error names (``parameter 'fast' ...``), if any."""
    for name in names:
        if f"parameter {name!r}" in message or f"{name}=" in message.split(" needs ")[0]:
            return name
    return None
