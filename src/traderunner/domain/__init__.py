"""Pure domain values: no I/O, no service clients. Frozen, slotted dataclasses and str Enums."""

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe

__all__ = ["CandleArrays", "Timeframe"]
