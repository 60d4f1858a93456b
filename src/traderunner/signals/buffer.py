"""The rolling window of recent bars of one series that the live strategies run on."""

from __future__ import annotations

import numpy as np

from traderunner.domain.candles import Candle, CandleArrays
from traderunner.domain.timeframe import Timeframe

_COLUMNS = ("open", "high", "low", "close", "volume")


class RollingBars:
    """The last ``capacity`` bars of one series, appended one at a time.

    Kept in preallocated arrays twice the capacity long: an append writes one row, and only
    when the arrays are full are the last ``capacity`` rows moved to the front, so a bar
    costs O(1) amortised and :meth:`window` is a view, not a copy.
    """

    def __init__(self, symbol: str, timeframe: Timeframe, capacity: int, source: str = "") -> None:
        if capacity < 1:
            raise ValueError(f"a rolling window needs capacity >= 1, not {capacity}")
        self.symbol, self.timeframe, self.capacity, self.source = (
            symbol,
            timeframe,
            capacity,
            source,
        )
        size = 2 * capacity
        self._ts = np.zeros(size, dtype=np.int64)
        self._cols = {name: np.zeros(size, dtype=np.float64) for name in _COLUMNS}
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_ns(self) -> int | None:
        return int(self._ts[self._end - 1]) if self._end > self._start else None

    def seed(self, candles: CandleArrays) -> None:
        """Start from the last ``capacity`` bars of ``candles`` (the store's history)."""
        n = min(len(candles), self.capacity)
        self._start, self._end = 0, n
        if n:
            self._ts[:n] = candles.ts[-n:]
            for name in _COLUMNS:
                self._cols[name][:n] = getattr(candles, name)[-n:]

    def append(self, bar: Candle) -> None:
        """Add the newest bar (its time must be after the last one's)."""
        last = self.last_ns
        if last is not None and bar.ts_ns <= last:
            raise ValueError(f"bar {bar.ts_ns} of {self.symbol} is not after the last {last}")
        if self._end == len(self._ts):
            keep = self.capacity - 1
            lo = self._end - keep
            self._ts[:keep] = self._ts[lo : self._end]
            for col in self._cols.values():
                col[:keep] = col[lo : self._end]
            self._start, self._end = 0, keep
        i = self._end
        self._ts[i] = bar.ts_ns
        for name in _COLUMNS:
            self._cols[name][i] = getattr(bar, name)
        self._end += 1
        if self._end - self._start > self.capacity:
            self._start += 1

    def window(self, bars: int | None = None) -> CandleArrays:
        """The newest ``bars`` bars (all held when None) as CandleArrays (views)."""
        lo = self._start if bars is None else max(self._start, self._end - bars)
        sl = slice(lo, self._end)
        c = self._cols
        return CandleArrays(
            self._ts[sl],
            c["open"][sl],
            c["high"][sl],
            c["low"][sl],
            c["close"][sl],
            c["volume"][sl],
            symbol=self.symbol,
            timeframe=self.timeframe,
            source=self.source,
        )
