"""Rich tables for people; JSON output lives in the commands (``--json``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from traderunner.reports.text import format_metric, settings_text

if TYPE_CHECKING:
    import pandas as pd

    from traderunner.domain.jobs import JobRecord
    from traderunner.domain.runs import RunRecord
    from traderunner.store import SeriesInfo
    from traderunner.strategies import Strategy


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


# -- what was run: the header every run, stored result and job prints -------------------------


def run_header(
    *,
    title: str,
    symbols: Sequence[str],
    timeframe: str,
    period: str,
    options: Mapping[str, Any],
    name: str = "",
) -> list[str]:
    """Two lines: what ran on what (strategy, parameters, symbols, timeframe, period), then
    how (direction, fills, sizing, costs, stops)."""
    named = f' "{name}"' if name else ""
    return [
        f"[bold]{title}[/]{named}  ·  {', '.join(symbols)}  ·  {timeframe}  ·  {period}",
        settings_text(options),
    ]


def short_time(value: Any) -> str:
    """A datetime or ISO text as ``2024-01-02 14:30`` (UTC), for tables."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        from datetime import datetime

        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return _time(value)


def runs_table(records: Sequence[RunRecord], title: str) -> Table:
    """Saved runs, newest first: id, what ran, who and when, and its headline figures."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("id", "kind", "strategy", "symbols", "tf", "owner", "created (UTC)", "origin"):
        table.add_column(name, no_wrap=name in ("id", "created (UTC)"))
    for name in ("return", "sharpe", "max dd", "trades / combos"):
        table.add_column(name, justify="right")
    for r in records:
        m = r.metrics
        count = r.summary.get("combinations") if r.kind.value == "sweep" else m.get("trades")
        symbols = ", ".join(r.symbols[:3]) + (
            f" +{len(r.symbols) - 3}" if len(r.symbols) > 3 else ""
        )
        table.add_row(
            r.id[:12],
            r.kind.value,
            r.strategy + (f' "{r.name}"' if r.name else ""),
            symbols,
            r.timeframe,
            r.owner or "(unknown)",
            short_time(r.created_at),
            r.origin.value,
            format_metric("total_return", m.get("total_return")),
            format_metric("sharpe", m.get("sharpe")),
            format_metric("max_drawdown", m.get("max_drawdown")),
            format_metric("trades", count),
        )
    return table


def jobs_table(records: Sequence[JobRecord], title: str) -> Table:
    """Jobs, newest first: id, what runs (strategy, symbols), state and progress, who."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in (
        "id",
        "kind",
        "strategy",
        "symbols",
        "state",
        "progress",
        "owner",
        "created (UTC)",
    ):
        table.add_column(name, no_wrap=name in ("id", "created (UTC)"))
    table.add_column("attempts", justify="right")
    table.add_column("message")
    for r in records:
        symbols = [str(s) for s in r.spec.get("symbols") or ()]
        shown = ", ".join(symbols[:3]) + (f" +{len(symbols) - 3}" if len(symbols) > 3 else "")
        table.add_row(
            r.id,
            r.kind.value,
            str(r.spec.get("strategy") or ""),
            shown,
            r.state.value,
            f"{r.progress:.0%}",
            r.owner,
            short_time(r.created_at),
            str(r.attempts),
            (r.message or r.error)[:70],
        )
    return table


def job_panel(record: JobRecord, chunks: Mapping[str, int] | None = None) -> Table:
    """One job's record as a two-column table (state, who, where, when, message)."""
    table = Table(show_header=False, box=box.SIMPLE, title=f"job {record.id}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str]] = [
        ("kind", record.kind.value),
        (
            "state",
            record.state.value + (f" ({record.progress:.0%})" if not record.state.terminal else ""),
        ),
        ("owner", record.owner or "(unknown)"),
        ("queue", f"{record.queue.value}, priority {record.priority}"),
        ("attempts", str(record.attempts)),
        ("worker", record.worker or "-"),
        ("created", short_time(record.created_at)),
        ("started", short_time(record.started_at) or "-"),
        ("finished", short_time(record.finished_at) or "-"),
    ]
    if record.started_at and record.finished_at:
        rows.append(("took", f"{(record.finished_at - record.started_at).total_seconds():.2f} s"))
    if chunks:
        rows.append(("chunks", ", ".join(f"{n} {s}" for s, n in sorted(chunks.items()))))
    if record.error:
        rows.append(("error", record.error))
    elif record.message:
        rows.append(("message", record.message))
    for field, value in rows:
        table.add_row(field, value)
    return table
