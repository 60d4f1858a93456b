"""Rich tables for people; JSON output lives in the commands (``--json``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from traderunner.store import SeriesInfo
    from traderunner.strategies import Strategy

# Metrics that are fractions and read best as percentages.
_PERCENT = {
    "total_return",
    "cagr",
    "annual_volatility",
    "max_drawdown",
    "win_rate",
    "exposure",
    "best_trade",
    "worst_trade",
}
_INTEGER = {"trades", "max_drawdown_duration_bars"}
_MONEY = {"start_value", "end_value", "expectancy"}


def format_metric(name: str, value: Any) -> str:
    """One metric value as text: percentages, counts, money, or 4 significant digits."""
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "-"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if name in _PERCENT:
        return f"{number * 100:.2f}%"
    if name in _INTEGER:
        return f"{number:,.0f}"
    if name in _MONEY:
        return f"{number:,.2f}"
    return f"{number:,.4g}" if abs(number) < 1000 else f"{number:,.0f}"


def metrics_table(
    portfolio: Mapping[str, Any],
    per_symbol: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    *,
    title: str,
) -> Table:
    """Metric rows; a portfolio column and, when several symbols, one column per symbol."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("portfolio", justify="right")
    columns = list(per_symbol) if len(per_symbol) > 1 else []
    for symbol in columns:
        table.add_column(symbol, justify="right")
    extra = [k for k in portfolio if k not in names]
    for name in [*names, *extra]:
        row = [name, format_metric(name, portfolio.get(name))]
        row += [format_metric(name, per_symbol[s].get(name)) for s in columns]
        table.add_row(*row)
    return table


def trades_table(trades: pd.DataFrame, last: int) -> Table:
    """The last ``last`` trades, oldest first."""
    shown = trades.tail(last)
    table = Table(
        title=f"last {len(shown)} of {len(trades)} trades (times UTC)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name in ("symbol", "side", "entry_time", "exit_time", "entry", "exit", "size", "pnl"):
        left = name in ("symbol", "side")
        table.add_column(name, justify="left" if left else "right", no_wrap=name.endswith("time"))
    table.add_column("return", justify="right")
    table.add_column("bars", justify="right")
    table.add_column("exit_reason")
    # to_dict, not itertuples: "return" is a Python keyword and itertuples would rename it.
    for row in shown.to_dict("records"):
        size = float(row["size"])
        table.add_row(
            str(row["symbol"]),
            "short" if size < 0 else "long",
            _time(row["entry_time"]),
            _time(row["exit_time"]),
            f"{float(row['entry_price']):,.4f}",
            f"{float(row['exit_price']):,.4f}",
            f"{abs(size):,.4g}",
            f"{float(row['pnl']):,.2f}",
            format_metric("total_return", row.get("return")),
            str(int(row["bars"])),
            str(row["exit_reason"]),
        )
    return table


def _time(value: Any) -> str:
    stamp = getattr(value, "strftime", None)
    return stamp("%Y-%m-%d %H:%M") if callable(stamp) else str(value)


def sweep_table(
    rows: Sequence[Mapping[str, Any]], params: Sequence[str], metrics: Sequence[str], title: str
) -> Table:
    """The top sweep rows: rank, the swept parameters, then the chosen metrics."""
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    for name in params:
        table.add_column(name, justify="right", style="cyan")
    for name in metrics:
        table.add_column(name, justify="right")
    for rank, row in enumerate(rows, start=1):
        table.add_row(
            str(rank),
            *(str(row.get(p, "")) for p in params),
            *(format_metric(m, row.get(m)) for m in metrics),
        )
    return table


def strategies_table(strategies: Mapping[str, type[Strategy]]) -> Table:
    """name, description and each parameter with type, default and bounds."""
    table = Table(title="strategies", title_justify="left", show_lines=True)
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("description")
    table.add_column("parameters (type = default  bounds)")
    for name, cls in strategies.items():
        lines = [
            f"{s.name}: {s.type.__name__} = {s.default!r}  {s.describe_bounds()}"
            for s in cls.param_specs()
        ]
        tag = cls.intraday and "intraday" not in cls.description.lower()
        description = cls.description + (" [dim](intraday)[/]" if tag else "")
        table.add_row(name, description, "\n".join(lines) or "-")
    return table


def series_table(series: Sequence[SeriesInfo], title: str) -> Table:
    """symbol, timeframe, source, bars, first, last, version."""
    from traderunner.cli.common import SYNTHETIC, short_ns

    table = Table(title=title, title_justify="left")
    for name in ("symbol", "timeframe", "source", "bars", "first (UTC)", "last (UTC)", "version"):
        table.add_column(name, justify="right" if name in ("bars", "version") else "left")
    for info in series:
        source = str(info.source)
        shown = f"[bold yellow]{source}[/]" if source.lower().startswith(SYNTHETIC) else source
        table.add_row(
            info.symbol,
            str(getattr(info.timeframe, "value", info.timeframe)),
            shown,
            f"{info.count:,}",
            short_ns(info.first_ns),
            short_ns(info.last_ns),
            str(info.version),
        )
    return table
