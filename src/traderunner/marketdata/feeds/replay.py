"""ReplayFeed: stored candles replayed as a feed, as fast as possible or at a chosen speed."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from traderunner.domain.candles import Candle, CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata.feeds.once import OnceFeed
from traderunner.store import Store

NS = 1_000_000_000
Sleep = Callable[[float], Awaitable[None]]


class ReplayFeed(OnceFeed):
    """Bars of ``series`` (one CandleArrays per symbol, one timeframe) as a finite Feed.

    ``speed`` is market seconds per real second: 0 (default) replays without waiting; 1 in
    real time; 60 a minute of market time per second. The wait between two open times is
    ``(next - previous) / speed`` seconds, at most ``max_sleep`` when given (overnight gaps).
    Yields ``Candle`` values with ``source`` = the series' source label (``synthetic`` data
    stays labelled). The iteration ends after the last bar (the end of a replay); ``aclose``
    ends it early.
    """

    def __init__(
        self,
        series: Sequence[CandleArrays],
        *,
        speed: float = 0.0,
        max_sleep: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__()
        if not series:
            raise DataRangeError("a replay needs at least one series: pass --symbols")
        frames = {tf for s in series if (tf := s.timeframe) is not None}
        if len(frames) != 1:
            raise DataRangeError(
                "a replay runs one timeframe; got "
                f"{', '.join(sorted(t.value for t in frames)) or 'none'}: pass one --timeframe"
            )
        if not speed >= 0:
            raise DataRangeError(f"replay speed must be >= 0 (0: no waiting), not {speed!r}")
        self._series = tuple(series)
        self._timeframe = frames.pop()
        self._speed = float(speed)
        self._max_sleep = max_sleep
        self._sleep = sleep
        self.yielded = 0

    @classmethod
    def from_store(
        cls,
        store: Store,
        symbols: Sequence[str],
        timeframe: Timeframe | str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        speed: float = 0.0,
        max_sleep: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> ReplayFeed:
        """A replay of the stored bars of ``symbols`` in ``[start_ns, end_ns]`` (None: all).

        DataRangeError (naming what the store holds) for a symbol with no bars there.
        """
        tf = Timeframe.parse(timeframe)
        names = list(dict.fromkeys(s.strip() for s in symbols if s.strip()))
        series = [store.candles.load(name, tf, start_ns, end_ns) for name in names]
        return cls(series, speed=speed, max_sleep=max_sleep, sleep=sleep)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(s.symbol for s in self._series)

    @property
    def timeframe(self) -> Timeframe:
        return self._timeframe

    async def _bars(self) -> AsyncIterator[Candle]:
        # (open time, symbol order, position): a k-way merge that keeps the symbol order.
        heap = [(int(s.ts[0]), k, 0) for k, s in enumerate(self._series) if len(s)]
        heapq.heapify(heap)
        previous: int | None = None
        while heap and not self._closed.is_set():
            ts, k, i = heapq.heappop(heap)
            if previous is not None and ts != previous and self._speed > 0:
                wait = (ts - previous) / NS / self._speed
                if self._max_sleep is not None:
                    wait = min(wait, self._max_sleep)
                await self._wait(wait)
                if self._closed.is_set():
                    return
            previous = ts
            s = self._series[k]
            if i + 1 < len(s):
                heapq.heappush(heap, (int(s.ts[i + 1]), k, i + 1))
            self.yielded += 1
            yield Candle(
                ts_ns=ts,
                open=float(s.open[i]),
                high=float(s.high[i]),
                low=float(s.low[i]),
                close=float(s.close[i]),
                volume=float(s.volume[i]),
                symbol=s.symbol,
                timeframe=self._timeframe,
                source=s.source,
            )

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when ``aclose`` is called meanwhile."""
        closing = asyncio.ensure_future(self._closed.wait())
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({closing, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            sleeping.cancel()
