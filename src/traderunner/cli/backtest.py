"""``traderunner backtest`` and ``traderunner sweep``: one run, or a parameter grid.

Both validate everything the user typed (strategy, parameters, options, period, timeframe)
before any data is loaded, so a typo fails in milliseconds with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common, show
from traderunner.errors import OptionError, ParameterError

if TYPE_CHECKING:
    from traderunner.domain.candles import CandleArrays
    from traderunner.strategies import Strategy

_DATA = "Data"
_COSTS = "Engine options"

StrategyArg = Annotated[
    str,
    typer.Argument(help="Strategy name; 'traderunner strategies' lists them.", show_default=False),
]
SymbolsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--symbols",
        "--symbol",
        "-s",
        help="Stored symbols, comma-separated or repeated (default: all stored for the "
        "timeframe); with --data, the file's one symbol (default: the file name).",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
TimeframeOpt = Annotated[
    str | None,
    typer.Option(
        "--timeframe",
        "-t",
        help="Bar size: M1 M5 M15 M30 H1 H4 D1 (default M5; with --data, told from the file).",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", help="Start: YYYY-MM-DD or ISO datetime (UTC).", rich_help_panel=_DATA),
]
ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to", help="End, inclusive: YYYY-MM-DD means the whole day.", rich_help_panel=_DATA
    ),
]
AdjustOpt = Annotated[
    str | None,
    typer.Option(
        "--adjust",
        help="Daily prices: all (split- and dividend-adjusted, default), splits, or none (raw).",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
FetchOpt = Annotated[
    str | None,
    typer.Option(
        "--fetch",
        help="Fetch what the store lacks from this provider first (eodhd, or synthetic); "
        "with --submit the worker does it. Needs --symbols and --from.",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Run on a CSV/Parquet file instead of the store.",
        exists=True,
        dir_okay=False,
        readable=True,
        rich_help_panel=_DATA,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", help="Strategy parameter name=value (repeatable).", show_default=False
    ),
]
FillOpt = Annotated[
    str | None,
    typer.Option("--fill", help="next_open (default) or close.", rich_help_panel=_COSTS),
]
DirectionOpt = Annotated[
    str | None,
    typer.Option("--direction", help="long (default), short or both.", rich_help_panel=_COSTS),
]
SizeOpt = Annotated[
    float | None,
    typer.Option(
        "--size", help="Fraction of equity per entry, (0, 1]; default 1.", rich_help_panel=_COSTS
    ),
]
UnitsOpt = Annotated[
    str | None,
    typer.Option(
        "--units",
        help="fractional (default) or whole: whole units (shares), rounded down per entry.",
        rich_help_panel=_COSTS,
    ),
]
LotSizeOpt = Annotated[
    float | None,
    typer.Option(
        "--lot-size",
        help="With --units whole: trade multiples of this many units (default 1).",
        rich_help_panel=_COSTS,
    ),
]
CashOpt = Annotated[
    float | None,
    typer.Option(
        "--cash",
        help="Starting cash, split over the symbols; default 100000.",
        rich_help_panel=_COSTS,
    ),
]
FeesOpt = Annotated[
    float | None,
    typer.Option(
        "--fees-bps", help="Fee per fill in basis points of notional.", rich_help_panel=_COSTS
    ),
]
FeePerOrderOpt = Annotated[
    float | None,
    typer.Option("--fee-per-order", help="Fixed fee per fill, in cash.", rich_help_panel=_COSTS),
]
SlippageOpt = Annotated[
    float | None,
    typer.Option(
        "--slippage-bps", help="Adverse slippage per fill, basis points.", rich_help_panel=_COSTS
    ),
]
StopLossOpt = Annotated[
    float | None,
    typer.Option("--stop-loss", help="Stop loss as a fraction, 0.02 = 2%.", rich_help_panel=_COSTS),
]
TakeProfitOpt = Annotated[
    float | None,
    typer.Option(
        "--take-profit", help="Take profit as a fraction, 0.05 = 5%.", rich_help_panel=_COSTS
    ),
]
TrailingOpt = Annotated[
    float | None,
    typer.Option("--trailing-stop", help="Trailing stop as a fraction.", rich_help_panel=_COSTS),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
_JOBS = "Run as a durable job"
SubmitOpt = Annotated[
    bool,
    typer.Option(
        "--submit",
        help="Enqueue as a durable job for the workers instead of running here.",
        rich_help_panel=_JOBS,
    ),
]
FollowOpt = Annotated[
    bool,
    typer.Option(
        "--follow/--no-follow",
        help="With --submit: follow progress (Ctrl-C detaches, the job keeps running).",
        rich_help_panel=_JOBS,
    ),
]
QueueOpt = Annotated[
    str | None,
    typer.Option(
        "--queue",
        help="interactive (backtest default) or batch (sweep default).",
        rich_help_panel=_JOBS,
    ),
]
PriorityOpt = Annotated[
    int,
    typer.Option(
        "--priority", min=0, max=4, help="0 (first) .. 4 within the queue.", rich_help_panel=_JOBS
    ),
]
_RUN = "Saved result"
OwnerOpt = Annotated[
    str | None,
    typer.Option(
        "--owner",
        help="Who the run is recorded for (default: your OS user name).",
        rich_help_panel=_RUN,
        show_default=False,
    ),
]
NameOpt = Annotated[
    str,
    typer.Option(
        "--name", help="A name for the run, shown by 'results list'.", rich_help_panel=_RUN
    ),
]
SaveOpt = Annotated[
    bool,
    typer.Option(
        "--save/--no-save",
        help="Store the result and print its id ('traderunner results ...').",
        rich_help_panel=_RUN,
    ),
]


def _engine_options(**values: Any) -> dict[str, Any]:
    """The engine options the user set (None = engine default), validated now."""
    from traderunner.engine import BacktestOptions

    options = {k: v for k, v in values.items() if v is not None}
    BacktestOptions.from_kwargs(**options)
    return options


def _adjusted(
    state: common.State, candles: dict[str, CandleArrays], data: Path | None, adjust: str | None
) -> tuple[dict[str, CandleArrays], str]:
    """Stored daily series adjusted by ``--adjust`` (marketdata.adjust); what was applied."""
    from traderunner.marketdata.adjust import apply_adjustment, check_adjust, describe

    mode = check_adjust(adjust)
    if data is not None:
        return candles, "none (file)"
    with common.open_store(state.settings) as store:
        out, applied = apply_adjustment(store, candles, mode)
    return out, describe(applied)


def _job_symbols(
    state: common.State, symbols: list[str] | None, data: Path | None, tf: Any
) -> tuple[str, ...]:
    """Symbols for a submitted job: as given, else every stored symbol of the timeframe."""
    if data is not None:
        raise OptionError(
            "--submit runs over the store, not a file: import it first "
            "(traderunner data import FILE --symbol S) and pass --symbols S"
        )
    chosen = common.split_symbols(symbols)
    if chosen:
        return tuple(chosen)
    with common.open_store(state.settings) as store:
        stored = sorted({s.symbol for s in store.candles.list_series() if s.timeframe == tf})
    if not stored:
        from traderunner.errors import DataRangeError

        raise DataRangeError(
            f"no {tf.value} candles in the store: load some first (traderunner data demo)"
        )
    return tuple(stored)


def _prepare(
    ctx: typer.Context,
    strategy: str,
    timeframe: str | None,
    start: str | None,
    end: str | None,
) -> tuple[common.State, type[Strategy], Any, Any]:
    """State, strategy, timeframe (None: not given) and period, all checked."""
    from traderunner.domain.period import Period

    state = common.get_state(ctx)
    tf = common.parse_timeframe(timeframe) if timeframe is not None else None
    period = Period.parse(start, end)
    return state, state.strategy(strategy), tf, period


def _timeframe_of(candles: dict[str, CandleArrays], given: Any) -> tuple[Any, str]:
    """The timeframe the run used, and how it was chosen (for headers and JSON)."""
    first = next(iter(candles.values()))
    if first.meta.get("timeframe_inferred"):
        return first.timeframe, f"told from {Path(str(first.meta['file'])).name}"
    return first.timeframe, "given" if given is not None else "default"


def backtest(
    ctx: typer.Context,
    strategy: StrategyArg,
    symbols: SymbolsOpt = None,
    timeframe: TimeframeOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    param: ParamOpt = None,
    data: DataOpt = None,
    adjust: AdjustOpt = None,
    fetch: FetchOpt = None,
    fill: FillOpt = None,
    direction: DirectionOpt = None,
    size: SizeOpt = None,
    units: UnitsOpt = None,
    lot_size: LotSizeOpt = None,
    cash: CashOpt = None,
    fees_bps: FeesOpt = None,
    fee_per_order: FeePerOrderOpt = None,
    slippage_bps: SlippageOpt = None,
    stop_loss: StopLossOpt = None,
    take_profit: TakeProfitOpt = None,
    trailing_stop: TrailingOpt = None,
    save: SaveOpt = True,
    owner: OwnerOpt = None,
    name: NameOpt = "",
    trades: Annotated[
        int, typer.Option("--trades", min=0, help="Show the last N trades.", show_default=False)
    ] = 0,
    json_output: JsonOpt = False,
    submit: SubmitOpt = False,
    follow: FollowOpt = True,
    queue: QueueOpt = None,
    priority: PriorityOpt = 0,
) -> None:
    """Backtest a strategy over stored candles (or a --data file) and report its metrics."""
    state, cls, tf, period = _prepare(ctx, strategy, timeframe, start, end)
    params = cls.make_params(common.parse_assignments(param, "--param"))
    options = _engine_options(
        fill=fill,
        direction=direction,
        size=size,
        units=units,
        lot_size=lot_size,
        cash=cash,
        fees_bps=fees_bps,
        fee_per_order=fee_per_order,
        slippage_bps=slippage_bps,
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing_stop,
    )
    who = owner or common.default_owner()
    if submit:
        from traderunner.cli.jobs import Output, submit_and_follow
        from traderunner.jobs import BacktestSpec

        tf = tf or common.parse_timeframe(common.DEFAULT_TIMEFRAME)
        spec = BacktestSpec(
            cls.name,
            _job_symbols(state, symbols, data, tf),
            tf.value,
            start,
            end,
            params=params.to_dict(),
            options=options,
            name=name,
            adjust=_adjust_mode(adjust),
            fetch=_fetch_provider(fetch),
        )
        submit_and_follow(
            ctx,
            spec,
            queue=queue,
            level=priority,
            follow=follow,
            owner=who,
            output=Output(json=json_output, trades=trades),
        )
        return
    _fetch_here(state, fetch, symbols, data, tf, period, json_output)
    candles = common.load_market_data(
        state, data_file=data, symbols=symbols, timeframe=tf, period=period
    )
    tf, tf_how = _timeframe_of(candles, tf)
    candles, adjusted = _adjusted(state, candles, data, adjust)

    from traderunner.engine import run_backtest

    with (
        common.stop_on_interrupt() as should_stop,
        common.progress_bar(common.show_progress(json_output), cls.name) as progress,
    ):
        result = run_backtest(
            cls, candles, params, progress=progress, should_stop=should_stop, **options
        )

    result_id: str | None = None
    if save:
        with common.open_store(state.settings) as store:
            result_id = store.runs.save_backtest(
                result,
                owner=who,
                timeframe=tf.value,
                name=name,
                period=period.describe(),
                prices=candles,
                details={"timeframe_from": tf_how, "adjust": adjusted},
            )

    doc = result.to_dict()
    doc["adjust"] = adjusted
    if json_output:
        doc["timeframe"] = tf.value
        doc["timeframe_from"] = tf_how
        if result_id is not None:
            doc["result_id"] = result_id
        common.print_json(doc)
        common.warn_synthetic(
            common.synthetic_symbols(doc["sources"]), console=common.err_console()
        )
        return
    show.print_backtest(
        doc,
        timeframe=tf.value + _how_text(tf_how),
        period=period.describe(),
        name=name,
        trades=trades,
        bars={s: len(c) for s, c in candles.items()},
    )
    if result_id is not None:
        show.print_saved(result_id)


def sweep(
    ctx: typer.Context,
    strategy: StrategyArg,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            help="name=start:stop:step (inclusive), name=a,b,c or name=value; repeatable.",
            show_default=False,
        ),
    ] = None,
    param: ParamOpt = None,
    symbols: SymbolsOpt = None,
    timeframe: TimeframeOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    data: DataOpt = None,
    adjust: AdjustOpt = None,
    fetch: FetchOpt = None,
    fill: FillOpt = None,
    direction: DirectionOpt = None,
    size: SizeOpt = None,
    units: UnitsOpt = None,
    lot_size: LotSizeOpt = None,
    cash: CashOpt = None,
    fees_bps: FeesOpt = None,
    fee_per_order: FeePerOrderOpt = None,
    slippage_bps: SlippageOpt = None,
    stop_loss: StopLossOpt = None,
    take_profit: TakeProfitOpt = None,
    trailing_stop: TrailingOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many rows to show.")] = 10,
    sort: Annotated[
        str, typer.Option("--sort", help="Metric to rank by (descending; see --ascending).")
    ] = "sharpe",
    ascending: Annotated[
        bool,
        typer.Option(
            "--ascending", help="Rank the smallest first (e.g. --sort max_drawdown_duration_days)."
        ),
    ] = False,
    min_trades: Annotated[
        int,
        typer.Option(
            "--min-trades",
            min=0,
            help="Rank only combinations with at least N trades (infinite and NaN values "
            "always rank last).",
        ),
    ] = 0,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Threads (default: CPU count).", show_default=False),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Write every row to this CSV file.", dir_okay=False),
    ] = None,
    save: SaveOpt = True,
    owner: OwnerOpt = None,
    name: NameOpt = "",
    json_output: JsonOpt = False,
    submit: SubmitOpt = False,
    follow: FollowOpt = True,
    queue: QueueOpt = None,
    priority: PriorityOpt = 0,
) -> None:
    """Run a strategy over a grid of parameters and rank the combinations."""
    state, cls, tf, period = _prepare(ctx, strategy, timeframe, start, end)

    from traderunner.engine import METRIC_NAMES, expand_grid, parse_grid_values, run_sweep

    specs = common.parse_assignments(grid, "--grid")
    fixed = common.parse_assignments(param, "--param")
    both = sorted(set(specs) & set(fixed))
    if both:
        raise ParameterError(f"{', '.join(both)} given as both --grid and --param: give it once")
    if not specs:
        raise ParameterError(
            "sweep needs at least one --grid name=start:stop:step, e.g. --grid fast=5:50:5"
        )
    values = {name: parse_grid_values(text) for name, text in {**specs, **fixed}.items()}
    combos, skipped = expand_grid(cls, values)
    if not combos:
        raise ParameterError(
            f"the grid has no valid combination ({skipped} rejected by {cls.name}'s rules, "
            "e.g. fast must be below slow): adjust --grid"
        )
    if sort not in METRIC_NAMES:
        raise OptionError(f"--sort {sort!r} is not a metric; use one of {', '.join(METRIC_NAMES)}")
    options = _engine_options(
        fill=fill,
        direction=direction,
        size=size,
        units=units,
        lot_size=lot_size,
        cash=cash,
        fees_bps=fees_bps,
        fee_per_order=fee_per_order,
        slippage_bps=slippage_bps,
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing_stop,
    )
    who = owner or common.default_owner()
    if submit:
        from traderunner.cli.jobs import Output, submit_and_follow
        from traderunner.jobs import SweepSpec

        tf = tf or common.parse_timeframe(common.DEFAULT_TIMEFRAME)
        spec = SweepSpec(
            cls.name,
            _job_symbols(state, symbols, data, tf),
            values,
            tf.value,
            start,
            end,
            options=options,
            name=name,
            adjust=_adjust_mode(adjust),
            fetch=_fetch_provider(fetch),
        )
        submit_and_follow(
            ctx,
            spec,
            queue=queue,
            level=priority,
            follow=follow,
            owner=who,
            output=Output(
                json=json_output,
                top=top,
                sort=sort,
                csv=csv,
                ascending=ascending,
                min_trades=min_trades,
            ),
        )
        return
    _fetch_here(state, fetch, symbols, data, tf, period, json_output)
    candles: dict[str, CandleArrays] = common.load_market_data(
        state, data_file=data, symbols=symbols, timeframe=tf, period=period
    )
    tf, tf_how = _timeframe_of(candles, tf)
    candles, adjusted = _adjusted(state, candles, data, adjust)

    with (
        common.stop_on_interrupt() as should_stop,
        common.progress_bar(common.show_progress(json_output), f"sweep {cls.name}") as progress,
    ):
        result = run_sweep(
            cls,
            candles,
            values,
            workers=workers,
            progress=progress,
            should_stop=should_stop,
            **options,
        )
    frame = result.to_frame()
    if csv is not None:
        common.write_atomically(csv, lambda tmp: frame.to_csv(tmp, index=False))

    from traderunner.engine import BacktestOptions

    sources = {s: c.source for s, c in candles.items()}
    doc: dict[str, Any] = {
        "strategy": result.strategy,
        "symbols": list(candles),
        "sources": sources,
        "options": BacktestOptions.from_kwargs(**options).to_dict(),
        "skipped": result.skipped,
        "elapsed_s": result.elapsed_s,
        "rows": result.rows,
        "adjust": adjusted,
    }
    result_id: str | None = None
    if save:
        with common.open_store(state.settings) as store:
            result_id = store.runs.save_sweep(
                frame,
                owner=who,
                strategy=result.strategy,
                symbols=list(candles),
                timeframe=tf.value,
                grid=values,
                options=doc["options"],
                name=name,
                period=period.describe(),
                summary={
                    **{k: doc[k] for k in ("sources", "skipped", "elapsed_s", "adjust")},
                    "timeframe_from": tf_how,
                },
            )
    if json_output:
        payload = show.sweep_payload(
            doc, sort=sort, top=top, ascending=ascending, min_trades=min_trades
        )
        payload["timeframe"] = tf.value
        payload["timeframe_from"] = tf_how
        if result_id is not None:
            payload["result_id"] = result_id
        common.print_json(payload)
        common.warn_synthetic(common.synthetic_symbols(sources), console=common.err_console())
        return
    out = common.out_console()
    show.print_sweep(
        doc,
        values,
        timeframe=tf.value + _how_text(tf_how),
        period=period.describe(),
        sort=sort,
        top=top,
        name=name,
        ascending=ascending,
        min_trades=min_trades,
    )
    if csv is not None:
        out.print(f"wrote {len(result.rows)} rows to {csv}")
    if result_id is not None:
        show.print_saved(result_id)


def _fetch_provider(fetch: str | None) -> str | None:
    if fetch is None:
        return None
    from traderunner.marketdata.pipeline import check_provider

    return check_provider(fetch)


def _fetch_here(
    state: common.State,
    fetch: str | None,
    symbols: list[str] | None,
    data: Path | None,
    tf: Any,
    period: Any,
    json_output: bool,
) -> None:
    """``--fetch`` without ``--submit``: fetch what the store lacks here, then go on."""
    if fetch is None:
        return
    from datetime import UTC, datetime

    from traderunner.cli.data import _open_provider
    from traderunner.errors import DataRangeError
    from traderunner.marketdata.fetch import fetch_to_store

    wanted = common.split_symbols(symbols)
    if data is not None or not wanted or period.start is None:
        raise OptionError(
            "--fetch needs --symbols and --from (and no --data): it fetches those symbols "
            "from that day on, e.g. --fetch eodhd --symbols AAPL.US --from 2024-01-02"
        )
    tf = tf or common.parse_timeframe(common.DEFAULT_TIMEFRAME)
    with (
        _open_provider(_fetch_provider(fetch) or "", state.settings, tf) as source,
        common.open_store(state.settings) as store,
        common.progress_bar(common.show_progress(json_output), "fetching data") as bar,
    ):
        report = fetch_to_store(
            store,
            source,
            wanted,
            tf,
            period.start,
            period.end or datetime.now(UTC),
            progress=bar,
            refetch_sessions=state.settings.eodhd_refetch_sessions,
        )
    failed = [s for s in report.symbols if not s.ok]
    if failed:
        raise DataRangeError(
            f"fetching data failed for {failed[0].symbol}: {failed[0].error} (what arrived is "
            "stored; run again to go on)"
        )


def _adjust_mode(adjust: str | None) -> str:
    from traderunner.marketdata.adjust import check_adjust

    return check_adjust(adjust)


def _how_text(how: str) -> str:
    return f" ({how})" if how.startswith("told") else ""
