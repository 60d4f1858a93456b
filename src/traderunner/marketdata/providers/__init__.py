"""Market-data providers: where candles come from before they reach the store.

A provider is anything with a ``name`` (the source label stored with its bars) and a
``fetch(symbol, timeframe, start, end) -> CandleArrays`` method returning the bars whose open
time lies in ``[start, end]`` (UTC; naive datetimes are UTC), oldest first, with ``source``
set to its name. Providers do no caching and no storing: ingestion does that. The
deterministic :class:`SyntheticProvider` ships beside the protocol as the offline fake.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.marketdata.providers.synthetic import SyntheticProvider, synthetic_candles


@runtime_checkable
class Provider(Protocol):
    """The provider contract (see the module docstring)."""

    name: str

    def fetch(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> CandleArrays:
        """Bars of ``symbol`` at ``timeframe`` with open time in ``[start, end]``."""
        ...


@runtime_checkable
class ResponseCache(Protocol):
    """Raw provider responses by key, so a repeated fetch costs no API call.

    ``key`` is an opaque hash of the request (endpoint, symbol, interval, range), never of
    the API token. ``get`` returns None on a miss; implementations choose the lifetime and
    must not raise on a cache failure (a failure is a miss).
    """

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, body: bytes) -> None: ...


__all__ = ["Provider", "ResponseCache", "SyntheticProvider", "synthetic_candles"]
