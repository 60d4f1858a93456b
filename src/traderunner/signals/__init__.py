"""The stream service: candles from a feed → store → cache → bus, then live strategies → signals.

::

    from traderunner.signals import StreamService
    service = StreamService(market_cache, publisher)
    service.run(feed)            # any iterable of Candle (a replay or a live feed)

It never imports ``marketdata`` or ``trader``: the feed is handed in by the entrypoint
(``traderunner stream``), and the trader hears from it only through the bus (topics
``candles.{tf}`` and ``signals``, payloads in ``domain/live.py``). See service.py for the
order of the steps and why a restart neither repeats nor skips a signal.
"""

from traderunner.signals.buffer import RollingBars
from traderunner.signals.service import (
    BarReport,
    SleeveState,
    StreamService,
    history_of,
    next_target,
)

__all__ = [
    "BarReport",
    "RollingBars",
    "SleeveState",
    "StreamService",
    "history_of",
    "next_target",
]
