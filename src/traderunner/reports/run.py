"""Whole reports of one saved run: the self-contained HTML page and the CSV files.

What ``traderunner results export`` writes and the dashboard's run page downloads, built from
what ``store.runs`` returns (the run's record, its document and its tables), so both give the
same files. Pure presentation: no store, no engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traderunner.domain.runs import TRADE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from traderunner.domain.runs import RunRecord

#: The HTML report lists at most this many trades (the CSV has them all).
MAX_REPORT_TRADES = 5000
#: Sweep metrics shown beside the parameters in tables.
SWEEP_METRICS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor")


def trades_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A trade list (records with ISO times) as a DataFrame with UTC datetimes."""
    import pandas as pd

    frame = pd.DataFrame(list(records))
    for name in ("entry_time", "exit_time"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def synthetic_symbols(sources: Mapping[str, Any]) -> list[str]:
    """The symbols whose data was generated (their source starts with ``synthetic``)."""
    return [s for s, src in sources.items() if str(src).lower().startswith("synthetic")]


def top_rows(rows: Sequence[Mapping[str, Any]], by: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` best sweep rows by ``by``, descending, missing and NaN values last."""

    def key(row: Mapping[str, Any]) -> tuple[int, float]:
        value = row.get(by)
        if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
            return (1, 0.0)
        return (0, -float(value))

    return [dict(r) for r in sorted(rows, key=key)[: max(int(n), 0)]]


def trades_csv(doc: Mapping[str, Any]) -> str:
    """The trade list as CSV (times as stored, ISO-8601 UTC); no trades still gives the header."""
    import pandas as pd

    records = list(doc.get("trade_list") or [])
    columns = list(records[0]) if records else list(TRADE_COLUMNS)
    return str(pd.DataFrame(records, columns=columns).to_csv(index=False))


def equity_csv(equity: pd.DataFrame) -> str:
    """The equity curve and its drawdown as CSV, one row per bar (``time`` ISO-8601 UTC)."""
    from traderunner.reports.figures import drawdown

    curve = equity.set_index("ts")["equity"]
    out = curve.to_frame("equity")
    out["drawdown"] = drawdown(curve)
    out.index = out.index.map(lambda t: t.isoformat())
    out.index.name = "time"
    return str(out.to_csv())


def _lines(record: RunRecord, what: str) -> tuple[str, list[str]]:
    from traderunner.reports.text import settings_text

    named = f' "{record.name}"' if record.name else ""
    title = f"{what}{named}"
    where = ", ".join(record.symbols)
    period = str(record.summary.get("period") or "") or "period not recorded"
    return title, [f"{where} · {record.timeframe} · {period}", settings_text(record.options)]


def _footer(record: RunRecord) -> str:
    from traderunner import __version__

    return (
        f"traderunner {__version__} · result {record.id} · {record.origin.value} run by "
        f"{record.owner or '(unknown)'} · saved {record.created_at.isoformat()}"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    stamp = getattr(value, "strftime", None)
    return stamp("%Y-%m-%d %H:%M") if callable(stamp) else str(value)


def backtest_report(
    record: RunRecord, doc: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]
) -> str:
    """The backtest's self-contained HTML page: settings, metrics, figure, trades."""
    import pandas as pd

    from traderunner.reports.figures import backtest_figure
    from traderunner.reports.html import metrics_html, report, table_html
    from traderunner.reports.text import format_metric, params_text

    trades = trades_frame(doc.get("trade_list") or [])
    title, lines = _lines(record, f"{record.strategy} {params_text(record.params)}")
    prices = {
        name.removeprefix("price:"): frame
        for name, frame in frames.items()
        if name.startswith("price:")
    }
    equity = frames.get("equity", pd.DataFrame({"ts": [], "equity": []}))
    figure = backtest_figure(equity, prices, trades if len(trades) else None, title=title)
    per_symbol = {s: v.get("metrics") or {} for s, v in (doc.get("per_symbol") or {}).items()}
    sections = [("metrics", metrics_html(record.metrics, per_symbol))]
    if len(trades):
        shown = trades.tail(MAX_REPORT_TRADES)
        columns = list(shown.columns)
        cells = [
            [
                format_metric("total_return", v) if c == "return" else _cell(v)
                for c, v in zip(columns, row, strict=True)
            ]
            for row in shown.itertuples(index=False, name=None)
        ]
        heading = (
            f"trades ({len(shown)} of {len(trades)})"
            if len(shown) < len(trades)
            else (f"trades ({len(trades)})")
        )
        sections.append((heading, table_html(columns, cells)))
    return report(
        title=title,
        lines=lines,
        figure=figure,
        sections=sections,
        synthetic=synthetic_symbols(doc.get("sources") or {}),
        footer=_footer(record),
    )


def sweep_report(record: RunRecord, doc: Mapping[str, Any]) -> str:
    """The sweep's self-contained HTML page: settings, the metric over the grid, top rows."""
    import pandas as pd

    from traderunner.reports.figures import sweep_figure
    from traderunner.reports.html import report, table_html
    from traderunner.reports.text import format_metric, grid_text

    rows = pd.DataFrame(doc.get("rows") or [])
    sort = str(record.summary.get("rank_by") or "sharpe")
    title, lines = _lines(record, f"sweep {record.strategy} {grid_text(record.params)}")
    lines.append(f"{len(rows)} combinations ({int(doc.get('skipped') or 0)} skipped as invalid)")
    figure = sweep_figure(rows, record.params, sort, title=f"{sort} by parameters")
    best = top_rows(list(doc.get("rows") or []), sort, 20)
    columns = [*record.params, *SWEEP_METRICS]
    cells = [
        [str(r.get(c, "")) if c in record.params else format_metric(c, r.get(c)) for c in columns]
        for r in best
    ]
    return report(
        title=title,
        lines=lines,
        figure=figure,
        sections=[(f"top {len(cells)} by {sort}", table_html(columns, cells))],
        synthetic=synthetic_symbols(doc.get("sources") or {}),
        footer=_footer(record),
    )
