"""``traderunner live add|list|remove|pause|resume``: the strategies the stream runs live.

``live add`` checks the strategy, its parameters, the engine options, the timeframe and the
symbols (each must have candles in the store) exactly as a backtest job's spec is checked
(``jobs.spec.validate``), and writes nothing when any of it is wrong.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from traderunner.cli import common
from traderunner.cli.backtest import (
    CashOpt,
    DirectionOpt,
    FeePerOrderOpt,
    FeesOpt,
    FillOpt,
    LotSizeOpt,
    ParamOpt,
    SizeOpt,
    SlippageOpt,
    StopLossOpt,
    TakeProfitOpt,
    TrailingOpt,
    UnitsOpt,
    _engine_options,
)
from traderunner.errors import UserInputError

live_app = typer.Typer(
    help="Live strategies: what the stream service runs on new candles and the trader trades.",
    no_args_is_help=True,
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
NameArg = Annotated[str, typer.Argument(help="Live strategy name (letters, digits, _ . -).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UserInputError(
            f"live strategy name {name!r} is invalid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


@live_app.command("add")
def live_add(
    ctx: typer.Context,
    name: NameArg,
    strategy: Annotated[str, typer.Option("--strategy", help="Strategy name.", show_default=False)],
    symbols: Annotated[
        list[str], typer.Option("--symbols", "--symbol", "-s", help="Symbols, comma-separated.")
    ],
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Bar size.")] = "M5",
    param: ParamOpt = None,
    account: Annotated[str, typer.Option("--account", help="Its paper account.")] = "paper",
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
) -> None:
    """Add a live strategy (checked like a backtest job; nothing written when refused)."""
    from traderunner.domain.live import LiveStrategy
    from traderunner.domain.timeframe import Timeframe
    from traderunner.jobs.spec import add_live

    state = common.get_state(ctx)
    check_name(name)
    check_name(account)
    cls = state.strategy(strategy)
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
    chosen = common.split_symbols(symbols)
    if not chosen:
        raise UserInputError("no symbols given: name at least one, e.g. --symbols AAPL")
    tf = Timeframe.parse(timeframe).value
    with common.open_store(state.settings) as store:
        added = add_live(
            store,
            LiveStrategy(
                name=name,
                strategy=cls.name,
                symbols=tuple(chosen),
                timeframe=tf,
                params=params.to_dict(),
                options=options,
                account=account,
            ),
        )
    if added is None:
        raise UserInputError(
            f"a live strategy named {name!r} exists already: pick another name, or "
            f"'traderunner live remove {name}' first"
        )
    common.out_console().print(
        f"live strategy {name} added: {cls.name} on {', '.join(chosen)} {tf} "
        f"(account {account}); 'traderunner stream' runs it",
        markup=False,
    )


@live_app.command("list")
def live_list(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """The live strategies."""
    with common.open_store(common.get_state(ctx).settings) as store:
        found = store.live.list()
    if json_output:
        common.print_json({"live": [s.to_dict() for s in found]})
        return
    if not found:
        common.out_console().print(
            "no live strategies: add one with 'traderunner live add NAME --strategy S "
            "--symbols A,B'",
            markup=False,
        )
        return
    from rich.table import Table

    table = Table(title="live strategies")
    for col in ("name", "strategy", "symbols", "tf", "params", "options", "account", "state"):
        table.add_column(col)
    for s in found:
        table.add_row(
            s.name,
            s.strategy,
            ",".join(s.symbols),
            s.timeframe,
            " ".join(f"{k}={v}" for k, v in s.params.items()),
            " ".join(f"{k}={v}" for k, v in s.options.items()),
            s.account,
            "paused" if s.paused else "running",
        )
    common.out_console().print(table)


def _must_exist(done: bool, name: str) -> None:
    if not done:
        raise UserInputError(f"no live strategy {name!r}: see 'traderunner live list'")


@live_app.command("remove")
def live_remove(ctx: typer.Context, name: NameArg) -> None:
    """Remove a live strategy (its orders, fills and positions stay on record)."""
    with common.open_store(common.get_state(ctx).settings) as store:
        _must_exist(store.live.remove(name), name)
    common.out_console().print(f"live strategy {name} removed", markup=False)


@live_app.command("pause")
def live_pause(ctx: typer.Context, name: NameArg) -> None:
    """Stop publishing signals for it (the stream keeps its buffers; resume continues)."""
    with common.open_store(common.get_state(ctx).settings) as store:
        _must_exist(store.live.set_paused(name, True), name)
    common.out_console().print(f"live strategy {name} paused", markup=False)


@live_app.command("resume")
def live_resume(ctx: typer.Context, name: NameArg) -> None:
    """Publish its signals again, from the next bar."""
    with common.open_store(common.get_state(ctx).settings) as store:
        _must_exist(store.live.set_paused(name, False), name)
    common.out_console().print(f"live strategy {name} resumed", markup=False)
