"""What the Runs, Compare and Sweeps pages read of saved runs (``store.runs``), as frozen values.

A run belongs to its owner: :func:`visible_owner` is the owner filter for a listing (None, all,
for an admin), and :func:`open_run` refuses another user's run unless the reader is an admin.
Prices for the candlestick chart are the stored candles of the run's symbols over its bars,
merged into at most ``MAX_CANDLES`` candles so a year of M5 bars draws at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from traderunner.domain.runs import Page, RunKind, RunRecord
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import PermissionDeniedError, TraderunnerError

if TYPE_CHECKING:
    import pandas as pd

    from traderunner.store import Store

#: The candlestick chart shows at most this many candles (consecutive bars are merged).
MAX_CANDLES = 600
#: The runs listing reads this many of the newest runs (the grid pages and filters them).
LIST_LIMIT = 500
#: Headline metrics, in card order: (name, label).
HEADLINE = (
    ("total_return", "Total return"),
    ("cagr", "CAGR"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("max_drawdown", "Max drawdown"),
    ("calmar", "Calmar"),
    ("trades", "Trades"),
    ("win_rate", "Win rate"),
    ("profit_factor", "Profit factor"),
    ("exposure", "Exposure"),
    ("end_value", "End value"),
)


def visible_owner(user: str, admin: bool) -> str | None:
    return None if admin else user


def list_runs(
    store: Store, *, user: str, admin: bool, kind: RunKind | None = None, limit: int = LIST_LIMIT
) -> Page[RunRecord]:
    return store.runs.list(owner=visible_owner(user, admin), kind=kind, limit=limit)


def check_reader(record: RunRecord, user: str, admin: bool) -> None:
    if admin or not record.owner or record.owner == user:
        return
    raise PermissionDeniedError(f"result {record.id} belongs to {record.owner!r}, not to {user!r}")


@dataclass(frozen=True, slots=True)
class Candles:
    """One symbol's bars for the chart (merged ``merged`` bars to a candle; 1 = as stored)."""

    symbol: str
    ts: pd.DatetimeIndex
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    merged: int


@dataclass(frozen=True, slots=True)
class RunView:
    """One saved run with what its page draws."""

    record: RunRecord
    doc: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    trades: pd.DataFrame

    @property
    def per_symbol(self) -> dict[str, dict[str, Any]]:
        return {s: v.get("metrics") or {} for s, v in (self.doc.get("per_symbol") or {}).items()}


def open_run(
    store: Store,
    run_id: str,
    *,
    user: str,
    admin: bool,
    tables: tuple[str, ...] | None = ("equity",),
    document: bool = True,
) -> RunView | None:
    """The run with this id (or unique prefix), checked for the reader; None when there is none.

    ``tables`` names the stored tables to read (None: all, as the HTML report needs: the page
    draws its prices from the stored candles); ``document=False`` skips the trade list and the
    rest of the run's document (Compare needs only the curve)."""
    from traderunner.reports.run import trades_frame

    try:
        rid = store.runs.resolve(run_id)
    except TraderunnerError:
        return None
    record = store.runs.get(rid)
    if record is None:
        return None
    check_reader(record, user, admin)
    doc = (store.runs.document(rid) or {}) if document else {}
    frames = store.runs.frames(rid, tables) if record.kind is RunKind.BACKTEST else {}
    return RunView(record, doc, frames, trades_frame(doc.get("trade_list") or []))


def candles(store: Store, record: RunRecord, symbol: str) -> Candles | None:
    """The stored bars of ``symbol`` over the run's bars, merged to at most MAX_CANDLES."""
    import numpy as np
    import pandas as pd

    first = record.summary.get("first_bar")
    last = record.summary.get("last_bar")
    try:
        lo = pd.Timestamp(first).value if first else None
        hi = pd.Timestamp(last).value if last else None
        bars = store.candles.load(symbol, Timeframe.parse(record.timeframe), lo, hi)
    except (TraderunnerError, ValueError):
        return None
    n = len(bars.ts)
    step = max(1, math.ceil(n / MAX_CANDLES))
    starts = np.arange(0, n, step)
    return Candles(
        symbol=symbol,
        ts=pd.to_datetime(bars.ts[starts], utc=True),
        open=bars.open[starts].tolist(),
        high=np.maximum.reduceat(bars.high, starts).tolist(),
        low=np.minimum.reduceat(bars.low, starts).tolist(),
        close=bars.close[np.minimum(starts + step - 1, n - 1)].tolist(),
        merged=step,
    )


def equity_curves(store: Store, run_ids: list[str], *, user: str, admin: bool) -> list[RunView]:
    """The backtests among ``run_ids`` the reader may see, in the order given (unknown skipped)."""
    out = []
    for rid in run_ids:
        try:
            view = open_run(store, rid, user=user, admin=admin, document=False)
        except PermissionDeniedError:
            continue
        if view is not None and view.record.kind is RunKind.BACKTEST:
            out.append(view)
    return out


def matching_backtest(
    store: Store, sweep: RunRecord, params: dict[str, Any], *, user: str, admin: bool
) -> RunRecord | None:
    """A saved backtest of this sweep's strategy, symbols, timeframe, period and options with
    exactly ``params`` (the newest), or None."""
    found = store.runs.list(
        strategy=sweep.strategy,
        owner=visible_owner(user, admin),
        kind=RunKind.BACKTEST,
        limit=200,
    )
    period = sweep.summary.get("period")
    for record in found.items:
        if (
            record.symbols == sweep.symbols
            and record.timeframe == sweep.timeframe
            and record.summary.get("period") == period
            and record.options == sweep.options
            and _same(record.params, params)
        ):
            return record
    return None


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for name, value in wanted.items():
        other = stored.get(name)
        if isinstance(value, int | float) and isinstance(other, int | float):
            if not math.isclose(float(value), float(other), rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif str(value) != str(other):
            return False
    return True
