"""PollingFeed: each new bar asked of EODHD's intraday endpoint once it is final.

For every bar of ``timeframe`` (M1, M5 or H1) that closes while the feed runs, the feed waits
until ``settle_s`` after its close (EODHD publishes a bar once its interval is over; ``settle_s``
leaves room for the last trades to arrive), then asks the intraday endpoint for exactly that
bar, one request per symbol, through the provider (so through the shared limiter and its
quotas). A bar EODHD does not have yet is asked again every ``retry_s`` until
``give_up_s`` after its close, then left out (the feed never invents bars; a symbol that did
not trade has no bar). Bars are yielded once each, per symbol in time order.

The provider is synchronous (httpx); its calls run in a worker thread so the event loop stays
free. A refused token or a spent quota raises from the iteration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from traderunner.domain.candles import Candle
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata.feeds.once import OnceFeed
from traderunner.marketdata.providers.eodhd import EodhdProvider, check_symbol
from traderunner.marketdata.providers.eodhd_wire import INTRADAY

NS = 1_000_000_000
Sleep = Callable[[float], Awaitable[None]]


class PollingFeed(OnceFeed):
    """A live Feed asking EODHD for each final bar (see the module docstring)."""

    def __init__(
        self,
        provider: EodhdProvider,
        symbols: Sequence[str],
        timeframe: Timeframe | str,
        *,
        settle_s: float = 5.0,
        retry_s: float = 10.0,
        give_up_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__()
        tf = Timeframe.parse(timeframe)
        if tf not in INTRADAY:
            raise DataRangeError(
                f"a polling feed runs on EODHD's intraday bars: use M1, M5 or H1, not {tf.value}"
            )
        names = tuple(dict.fromkeys(check_symbol(s) for s in symbols))
        if not names:
            raise DataRangeError("a feed needs at least one symbol, e.g. AAPL.US")
        self._provider = provider
        self._symbols = names
        self._tf = tf
        self._settle = float(settle_s)
        self._retry = float(retry_s)
        self._give_up = float(give_up_s)
        self._clock = clock
        self._sleep = sleep
        self.requests = 0  # HTTP requests asked of the provider (one per symbol per try)
        self.missing = 0  # bars EODHD never had within give_up_s

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def timeframe(self) -> Timeframe:
        return self._tf

    async def _bars(self) -> AsyncIterator[Candle]:
        step = self._tf.seconds
        # The first bar asked is the one in progress now: it closes next.
        bar = int(self._clock()) // step * step
        while not self._closed.is_set():
            due = bar + step + self._settle
            if not await self._until(due):
                return
            for candle in await self._fetch_bar(bar, step):
                yield candle
            bar += step

    async def _fetch_bar(self, bar: int, step: int) -> list[Candle]:
        """The bar opening at ``bar`` for every symbol that has it, in symbol order."""
        waiting = list(self._symbols)
        found: dict[str, Candle] = {}
        while waiting and not self._closed.is_set():
            for symbol in list(waiting):
                candle = await asyncio.to_thread(self._ask, symbol, bar, step)
                if candle is not None:
                    found[symbol] = candle
                    waiting.remove(symbol)
            if not waiting:
                break
            retry_at = self._clock() + self._retry
            if retry_at > bar + step + self._give_up:
                self.missing += len(waiting)
                break
            if not await self._until(retry_at):
                break
        return [found[s] for s in self._symbols if s in found]

    def _ask(self, symbol: str, bar: int, step: int) -> Candle | None:
        (request,) = self._provider.plan_ns(symbol, self._tf, bar * NS, (bar + step - 1) * NS)
        self.requests += 1
        chunk = self._provider.fetch_request(request)
        bars = chunk.candles.between(bar * NS, bar * NS)
        return bars.last() if len(bars) else None

    async def _until(self, when: float) -> bool:
        """Sleep until the clock reads ``when``; False when the feed was closed meanwhile."""
        while not self._closed.is_set():
            left = when - self._clock()
            if left <= 0:
                return True
            closing = asyncio.ensure_future(self._closed.wait())
            sleeping = asyncio.ensure_future(self._sleep(left))
            try:
                await asyncio.wait({closing, sleeping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
                sleeping.cancel()
        return False
