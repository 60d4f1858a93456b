"""Feeds for the stream service: the :class:`~traderunner.domain.feeds.Feed` implementations.

::

    from traderunner.marketdata.feeds import ReplayFeed

    feed = ReplayFeed.from_store(store, ["AAPL.US"], "M5", start_ns=..., end_ns=..., speed=0)
    async for candle in feed:  # domain.candles.Candle, each closed bar once, in time order
        ...
    # the loop ends after the last stored bar; a live feed ends only on `await feed.aclose()`

``ReplayFeed`` replays stored candles; ``PollingFeed`` asks EODHD's intraday endpoint for each
bar once it is final, through the shared limiter; ``WebSocketFeed`` aggregates EODHD's
real-time trades into bars. The contract they share is in :mod:`traderunner.domain.feeds`.
"""

from traderunner.domain.feeds import Feed
from traderunner.marketdata.feeds.polling import PollingFeed
from traderunner.marketdata.feeds.replay import ReplayFeed
from traderunner.marketdata.feeds.websocket import WebSocketFeed

__all__ = ["Feed", "PollingFeed", "ReplayFeed", "WebSocketFeed"]
