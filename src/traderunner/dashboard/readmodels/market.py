"""What the Data page shows: the series in the store and the holes in one of them.

:func:`series_rows` is one query (the ``series`` table: no bar is read). :func:`series_detail`
loads one series' bars to run :func:`traderunner.marketdata.gaps.find_gaps` over them and to
count bars per session, so the page only does it for the series the user picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from traderunner.domain.sessions import US_EQUITY, session_ids
from traderunner.domain.timeframe import Timeframe
from traderunner.marketdata.gaps import GapReport, day_date, find_gaps, session_bounds

if TYPE_CHECKING:
    from traderunner.store import SeriesInfo, Store

NS = 1_000_000_000


def series_id(symbol: str, timeframe: str) -> str:
    """The page's id of one series (``AAPL.US|M5``)."""
    return f"{symbol}|{timeframe}"


def parse_series_id(value: str) -> tuple[str, Timeframe] | None:
    symbol, sep, tf = (value or "").partition("|")
    if not sep or not symbol:
        return None
    try:
        return symbol, Timeframe.parse(tf)
    except Exception:
        return None


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, tz=UTC).strftime("%Y-%m-%d %H:%M")


def series_rows(series: list[SeriesInfo]) -> list[dict[str, Any]]:
    """One table row per stored series."""
    return [
        {
            "id": series_id(s.symbol, s.timeframe.value),
            "symbol": s.symbol,
            "timeframe": s.timeframe.value,
            "source": s.source,
            "bars": s.count,
            "first": _day(s.first_ns),
            "last": _day(s.last_ns),
            "days": round((s.last_ns - s.first_ns) / NS / 86400, 1),
            "version": s.version,
        }
        for s in series
    ]


@dataclass(frozen=True, slots=True)
class StoreSummary:
    series: int
    symbols: int
    bars: int
    first_ns: int | None
    last_ns: int | None
    synthetic: int
    timeframes: tuple[str, ...]


def summarize(series: list[SeriesInfo]) -> StoreSummary:
    return StoreSummary(
        series=len(series),
        symbols=len({s.symbol for s in series}),
        bars=sum(s.count for s in series),
        first_ns=min((s.first_ns for s in series), default=None),
        last_ns=max((s.last_ns for s in series), default=None),
        synthetic=sum(1 for s in series if "synthetic" in s.source),
        timeframes=tuple(sorted({s.timeframe.value for s in series}, key=_tf_order)),
    )


def _tf_order(value: str) -> int:
    return Timeframe.parse(value).seconds


@dataclass(frozen=True, slots=True)
class SessionCounts:
    """Bars per session day (intraday) or per month (daily bars), with what a full one holds."""

    labels: tuple[date, ...]
    bars: tuple[int, ...]
    expected: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SeriesDetail:
    info: SeriesInfo
    report: GapReport
    counts: SessionCounts


def series_detail(store: Store, symbol: str, timeframe: Timeframe) -> SeriesDetail | None:
    """The gap report and bars per session of one stored series (None if it is not stored)."""
    info = store.candles.series(symbol, timeframe)
    if info is None:
        return None
    candles = store.candles.load(symbol, timeframe)
    report = find_gaps(candles, timeframe)
    return SeriesDetail(info, report, _session_counts(np.asarray(candles.ts), timeframe))


def _session_counts(ts: np.ndarray[Any, Any], timeframe: Timeframe) -> SessionCounts:
    if len(ts) == 0:
        return SessionCounts((), (), ())
    if not timeframe.is_intraday:
        months = ts.astype("datetime64[ns]").astype("datetime64[M]")
        labels, bars = np.unique(months, return_counts=True)
        return SessionCounts(
            tuple(date.fromisoformat(str(m) + "-01") for m in labels),
            tuple(int(b) for b in bars),
            tuple(0 for _ in bars),
        )
    days = session_ids(ts, US_EQUITY.tz)
    labels, bars = np.unique(days, return_counts=True)
    open_ns, close_ns = session_bounds(labels, timeframe, US_EQUITY)
    expected = (close_ns - open_ns) // (timeframe.seconds * NS)
    return SessionCounts(
        tuple(day_date(int(d)) for d in labels),
        tuple(int(b) for b in bars),
        tuple(int(e) for e in expected),
    )
