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


__all__ = ["Provider", "SyntheticProvider", "synthetic_candles"]
