"""The one feed interface: closed bars, one at a time, from a replay or a live source.

The stream service (``signals``) consumes a :class:`Feed`; ``marketdata.feeds`` implements it
(``ReplayFeed`` over stored candles, ``PollingFeed`` on EODHD's intraday endpoint,
``WebSocketFeed`` on EODHD's real-time trades). The CLI builds the feed and hands it in, so the
stream service imports nothing of ``marketdata`` (import-linter: siblings never import each
other); both import this module.

Contract of every feed

* ``async for candle in feed`` yields each **closed** bar once, as a
  :class:`~traderunner.domain.candles.Candle` with ``symbol``, ``timeframe`` and ``source``
  set and ``ts_ns`` = the bar's **open** time (UTC nanoseconds, a multiple of the timeframe).
* Per symbol, ``ts_ns`` strictly increases: a bar is never yielded twice, never out of order
  (a reconnecting feed drops what it already yielded).
* Across symbols, bars come in order of open time; bars with the same open time come together,
  in the order of ``symbols``.
* **The end.** A finite feed (a replay) ends its iteration (``StopAsyncIteration``: the
  ``async for`` loop simply finishes) after its last bar. A live feed never ends on its own;
  ``await feed.aclose()`` stops it from any task, after which its iteration ends. A feed is
  iterated once.
* Errors that retrying cannot fix (a refused token, a spent quota) raise from the iteration
  with one clear line; transient ones (a dropped connection) are retried inside the feed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from traderunner.domain.candles import Candle
from traderunner.domain.timeframe import Timeframe


@runtime_checkable
class Feed(Protocol):
    """A source of closed bars (see the module docstring for the contract)."""

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols it yields bars of, in the order bars of one open time come."""
        ...

    @property
    def timeframe(self) -> Timeframe:
        """The bar size of every bar it yields."""
        ...

    def __aiter__(self) -> AsyncIterator[Candle]:
        """The bars, as they close."""
        ...

    async def aclose(self) -> None:
        """Stop the feed (idempotent); its iteration then ends."""
        ...


__all__ = ["Candle", "Feed"]
