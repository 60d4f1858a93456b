"""``traderunner data ...``: import candle files, load demo data, list what is stored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common
from traderunner.cli.render import series_table

if TYPE_CHECKING:
    from traderunner.store import SeriesInfo

data_app = typer.Typer(
    name="data",
    help="Import, generate and list market data in the store.",
    no_args_is_help=True,
)


def _series_dict(info: SeriesInfo) -> dict[str, Any]:
    return {
        "symbol": info.symbol,
        "timeframe": str(getattr(info.timeframe, "value", info.timeframe)),
        "source": info.source,
        "bars": info.count,
        "first": common.iso_ns(info.first_ns),
        "last": common.iso_ns(info.last_ns),
        "version": info.version,
    }


@data_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet file with time, open, high, low, close[, volume].",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol name (default: the file name, upper-cased)."),
    ] = None,
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Bar size of the file: M1 M5 M15 M30 H1 H4 D1.")
    ] = "M5",
) -> None:
    """Validate a candle file, then write it to the store in one transaction."""
    from traderunner.marketdata import import_file

    state = common.get_state(ctx)
    tf = common.parse_timeframe(timeframe)
    name = (symbol or common.file_stem(file)).strip().upper()
    with common.open_store(state.settings) as store:
        info = import_file(store, file, name, tf)
    out = common.out_console()
    out.print(series_table([info], title=f"imported {file.name}"))


@data_app.command("demo")
def demo(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols",
            "-s",
            help="Symbols to generate, comma-separated (default: the demo set).",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=3650, help="Calendar days of data.")
    ] = 120,
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Bar size: M1 M5 M15 M30 H1 H4 D1.")
    ] = "M5",
) -> None:
    """Load SYNTHETIC demo candles (seeded random walks, not market prices) into the store."""
    from traderunner.marketdata import DEMO_SYMBOLS, load_demo

    state = common.get_state(ctx)
    tf = common.parse_timeframe(timeframe)
    wanted = common.split_symbols(symbols) or list(DEMO_SYMBOLS)
    with common.open_store(state.settings) as store:
        infos = load_demo(store, wanted, tf, days)
    out = common.out_console()
    out.print(series_table(infos, title="demo data loaded"))
    common.warn_synthetic([i.symbol for i in infos], console=out)


@data_app.command("list")
def list_(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the stored candle series: symbol, timeframe, source, bars, first, last, version."""
    state = common.get_state(ctx)
    with common.open_store(state.settings) as store:
        series = store.candles.list_series()
    if json_output:
        common.print_json({"series": [_series_dict(i) for i in series]})
        return
    out = common.out_console()
    if not series:
        out.print(
            "no candles stored yet: run 'traderunner data demo' or 'traderunner data import FILE'"
        )
        return
    out.print(series_table(series, title=f"{len(series)} series in the store"))
