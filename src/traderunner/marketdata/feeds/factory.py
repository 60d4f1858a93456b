"""open_feed: the feed a ``--feed`` option names, built from settings, for the CLI to hand in.

::

    with open_feed("replay", settings=s, store=store, symbols=["AAPL.US"], timeframe="M5",
                   start_ns=..., end_ns=..., speed=60) as feed:
        stream_service.run(feed)   # anything that takes a domain.feeds.Feed

Kinds: ``replay`` (stored candles; ``start_ns``/``end_ns``/``speed``), ``poll`` (EODHD's
intraday endpoint through the shared limiter and response cache), ``websocket`` (EODHD's
real-time trades, ``TRADERUNNER_EODHD_TOKEN``). Leaving the block closes what the feed opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from traderunner.domain.feeds import Feed
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ConfigError, OptionError
from traderunner.store import Store

if TYPE_CHECKING:
    from traderunner.config import Settings

FEED_KINDS = ("replay", "poll", "websocket")


@contextmanager
def open_feed(
    kind: str,
    *,
    settings: Settings,
    store: Store,
    symbols: Sequence[str],
    timeframe: Timeframe | str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    speed: float = 0.0,
) -> Iterator[Feed]:
    """The feed of ``kind`` (see the module docstring); OptionError for an unknown kind."""
    key = str(kind).strip().lower()
    tf = Timeframe.parse(timeframe)
    if key == "replay":
        from traderunner.marketdata.feeds.replay import ReplayFeed

        yield ReplayFeed.from_store(
            store, symbols, tf, start_ns=start_ns, end_ns=end_ns, speed=speed
        )
        return
    if key == "poll":
        from traderunner.marketdata.feeds.polling import PollingFeed
        from traderunner.marketdata.pipeline import open_provider

        with open_provider("eodhd", settings, tf) as provider:
            yield PollingFeed(provider, symbols, tf)
        return
    if key == "websocket":
        from traderunner.marketdata.feeds.websocket import WebSocketFeed

        if not settings.eodhd_token.get_secret_value().strip():
            raise ConfigError("no EODHD API token: set TRADERUNNER_EODHD_TOKEN")
        yield WebSocketFeed(settings.eodhd_token, symbols, tf)
        return
    raise OptionError(f"unknown feed {kind!r}: use {', '.join(FEED_KINDS)}")
