"""Getting candles into the store and back out, for several symbols at a time.

``import_file`` reads and validates a whole file before it writes anything, then writes it in
one store transaction: a bad row anywhere leaves the store exactly as it was. ``load_demo``
fills the store with reproducible synthetic data (labelled ``synthetic``) ending at a fixed
anchor date, so every demo, test and screenshot shows the same bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata.files import read_candle_file
from traderunner.marketdata.providers.synthetic import synthetic_candles
from traderunner.store import SeriesInfo, SeriesWrite, Store

DEMO_SYMBOLS: tuple[str, ...] = ("AAPL", "MSFT", "TSLA")
# The demo's last trading day. Fixed, so the demo data never changes with the calendar.
DEMO_ANCHOR = date(2025, 6, 30)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def import_file(
    store: Store, path: Path, symbol: str, timeframe: Timeframe | None = None
) -> tuple[CandleArrays, SeriesWrite]:
    """Validate all of ``path``, then upsert it as ``symbol`` in one transaction.

    ``timeframe`` None: told from the bar times (a given one must agree with them, see
    :func:`read_candle_file`). Returns the bars read and what the write did (its ``series``
    is the series as stored afterwards; bars identical to the stored ones change nothing,
    not even the version). DataFileError (nothing written) for a bad file.
    """
    candles = read_candle_file(Path(path), symbol, timeframe)
    write = store.candles.upsert(candles)
    assert write.series is not None  # the upsert above just wrote it
    return candles, write


def demo_range(days: int, anchor: date = DEMO_ANCHOR) -> tuple[datetime, datetime]:
    """``[start, end]`` (UTC) covering the ``days`` weekdays that end on ``anchor``."""
    if int(days) < 1:
        raise DataRangeError(f"the demo needs at least 1 day, got {days}: pass --days 1 or more")
    last = np.busday_offset(np.datetime64(anchor, "D"), 0, roll="backward")
    first = np.busday_offset(last, -(int(days) - 1), roll="backward")
    first_day = date.fromisoformat(str(first))
    last_day = date.fromisoformat(str(last))
    start = datetime.combine(first_day, time(0, 0), tzinfo=UTC)
    end = datetime.combine(last_day, time(0, 0), tzinfo=UTC) + timedelta(days=1, microseconds=-1)
    return start, end


def load_demo(
    store: Store,
    symbols: Sequence[str] = DEMO_SYMBOLS,
    timeframe: Timeframe = Timeframe.M5,
    days: int = 120,
) -> list[SeriesInfo]:
    """Store ``days`` weekdays of synthetic bars for each symbol, ending on DEMO_ANCHOR.

    Idempotent: the same bars every time, so a second run changes nothing (not even the
    series version).
    Returns the stored series, in the order of ``symbols``.
    """
    tf = Timeframe.parse(timeframe)
    names = [str(s).strip() for s in symbols if str(s).strip()]
    if not names:
        raise DataRangeError("the demo needs at least one symbol, e.g. AAPL")
    start, end = demo_range(days)
    out: list[SeriesInfo] = []
    for name in names:
        store.candles.upsert(synthetic_candles(name, tf, start, end))
        info = store.candles.series(name, tf)
        assert info is not None
        out.append(info)
    return out


def _to_ns(value: datetime | None) -> int | None:
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return ((aware - _EPOCH) // timedelta(microseconds=1)) * 1_000


def load_candles(
    store: Store,
    symbols: Sequence[str],
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, CandleArrays]:
    """The stored bars of each symbol in ``[start, end]`` (None = unbounded), in input order.

    Naive datetimes are UTC. The first symbol without bars there raises DataRangeError
    (saying what the store holds).
    """
    tf = Timeframe.parse(timeframe)
    lo, hi = _to_ns(start), _to_ns(end)
    out: dict[str, CandleArrays] = {}
    for symbol in symbols:
        out[symbol] = store.candles.load(symbol, tf, lo, hi)
    return out
