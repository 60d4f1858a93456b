"""What every feed shares: it is iterated once, and ``aclose`` ends that iteration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from traderunner.domain.candles import Candle


class OnceFeed:
    """Base of the feeds: ``__aiter__`` hands out :meth:`_bars` once; ``aclose`` sets ``_closed``.

    A subclass implements ``_bars`` (checking ``self._closed`` between bars) and the Feed
    protocol's ``symbols`` and ``timeframe``. ``aclose`` is idempotent and may be called from
    any task.
    """

    def __init__(self) -> None:
        self._closed = asyncio.Event()
        self._iterated = False

    def __aiter__(self) -> AsyncIterator[Candle]:
        if self._iterated:
            raise RuntimeError(f"a feed is iterated once: build a new {type(self).__name__}")
        self._iterated = True
        return self._bars()

    async def aclose(self) -> None:
        self._closed.set()

    def _bars(self) -> AsyncIterator[Candle]:
        raise NotImplementedError
