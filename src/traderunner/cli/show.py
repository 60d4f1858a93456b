"""Printing a run the same way wherever it comes from: run here, saved, or finished as a job.

A backtest or sweep is printed from its *document*, the shape ``backtest --json`` / ``sweep
--json`` print (``BacktestResult.to_dict()``, or a sweep's summary and rows), plus the facts of
where it ran (timeframe, period, name). ``traderunner backtest``, ``results show``, ``jobs
show``/``follow`` and ``--submit`` all call these, so the same run prints the same tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traderunner.cli import common
from traderunner.cli.render import metrics_table, run_header, sweep_table, trades_table
from traderunner.reports.text import grid_text, params_text

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from traderunner.domain.runs import Page

SWEEP_METRICS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor")


def trades_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A trade list (records with ISO times) as a DataFrame with UTC datetimes."""
    import pandas as pd

    frame = pd.DataFrame(list(records))
    for name in ("entry_time", "exit_time"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def print_backtest(
    doc: Mapping[str, Any],
    *,
    timeframe: str,
    period: str,
    name: str = "",
    trades: int = 0,
    bars: Mapping[str, int] | None = None,
    console: Console | None = None,
) -> None:
    """Header (what and how), data line, SYNTHETIC label, metric table, the last trades."""
    out = console or common.out_console()
    for line in run_header(
        title=f"{doc.get('strategy')} {params_text(doc.get('params') or {})}",
        symbols=list(doc.get("symbols") or ()),
        timeframe=timeframe,
        period=period,
        options=doc.get("options") or {},
        name=name,
    ):
        out.print(line)
    sources: Mapping[str, str] = doc.get("sources") or {}
    bars = bars if bars is not None else doc.get("bars") or {}
    if sources:
        out.print(
            "data: "
            + ", ".join(
                f"{s} ({src or 'unknown'}" + (f", {int(bars[s]):,} bars)" if s in bars else ")")
                for s, src in sources.items()
            )
        )
    common.warn_synthetic(common.synthetic_symbols(sources), console=out)
    portfolio: Mapping[str, Any] = doc.get("metrics") or {}
    per_symbol = {s: (v.get("metrics") or {}) for s, v in (doc.get("per_symbol") or {}).items()}
    out.print(metrics_table(portfolio, per_symbol, list(portfolio), title="metrics"))
    trade_list = doc.get("trade_list") or []
    if trades and trade_list:
        out.print(trades_table(trades_frame(trade_list), trades))


def sweep_payload(
    doc: Mapping[str, Any],
    *,
    sort: str,
    top: int,
    ascending: bool = False,
    min_trades: int = 0,
) -> dict[str, Any]:
    """The ``sweep --json`` object from a sweep's document (every row): the top rows by
    ``sort`` (ranked by :func:`traderunner.engine.sweep.rank_rows`) and the best one."""
    from traderunner.engine.sweep import rank_rows

    rows = list(doc.get("rows") or [])
    best = rank_rows(rows, sort, ascending=ascending, min_trades=min_trades, n=top)
    return {
        "strategy": doc.get("strategy"),
        "combinations": len(rows),
        "skipped": int(doc.get("skipped") or 0),
        "elapsed_s": float(doc.get("elapsed_s", doc.get("compute_s")) or 0.0),
        "sort": sort,
        "ascending": ascending,
        "min_trades": min_trades,
        "symbols": list(doc.get("symbols") or ()),
        "sources": dict(doc.get("sources") or {}),
        "rows": best,
        "best": best[0] if best else None,
    }


def print_sweep(
    doc: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    *,
    timeframe: str,
    period: str,
    sort: str,
    top: int,
    name: str = "",
    console: Console | None = None,
    ascending: bool = False,
    min_trades: int = 0,
) -> None:
    """Header (grid and settings), SYNTHETIC label, the top rows and the totals line."""
    out = console or common.out_console()
    payload = sweep_payload(doc, sort=sort, top=top, ascending=ascending, min_trades=min_trades)
    for line in run_header(
        title=f"sweep {doc.get('strategy')} {grid_text(grid)}",
        symbols=payload["symbols"],
        timeframe=timeframe,
        period=period,
        options=doc.get("options") or {},
        name=name,
    ):
        out.print(line)
    common.warn_synthetic(common.synthetic_symbols(payload["sources"]), console=out)
    shown = [sort, *(m for m in SWEEP_METRICS if m != sort)]
    order = " (ascending)" if ascending else ""
    kept = f", at least {min_trades} trades" if min_trades else ""
    title = f"top {len(payload['rows'])} of {payload['combinations']} by {sort}{order}{kept}"
    out.print(sweep_table(payload["rows"], list(grid), shown, title))
    out.print(
        f"{payload['combinations']} combinations ({payload['skipped']} skipped as invalid) "
        f"in {payload['elapsed_s']:.2f} s"
    )


def print_saved(run_id: str, console: Console | None = None) -> None:
    """``saved result ID`` and how to get it back."""
    out = console or common.out_console()
    out.print(f"saved result [bold]{run_id}[/]")
    short = run_id[:8]
    out.print(
        f"[dim]see it again: traderunner results show {short}; "
        f"report: traderunner results export {short}[/]"
    )


def print_page(
    page: Page[Any],
    *,
    noun: str,
    records: Sequence[Mapping[str, Any]],
    table: Callable[[str], Table],
    json_output: bool,
) -> None:
    """One page of a listing: ``{noun: records, total, offset, limit}`` with ``--json``, else
    ``table(title)`` titled ``jobs 1-30 of 120`` and how to get the next page."""
    if json_output:
        common.print_json(
            {noun: list(records), "total": page.total, "offset": page.offset, "limit": page.limit}
        )
        return
    out = common.out_console()
    first = page.offset + 1 if page.items else 0
    out.print(table(f"{noun} {first}-{page.offset + len(page.items)} of {page.total}"))
    if page.more:
        out.print(f"[dim]more: --offset {page.offset + len(page.items)}[/]")
