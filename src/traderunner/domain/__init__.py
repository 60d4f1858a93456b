"""Pure domain values: no I/O, no service clients. Frozen, slotted dataclasses and str Enums."""

from traderunner.domain.candles import Candle, CandleArrays
from traderunner.domain.timeframe import Timeframe

__all__ = ["Candle", "CandleArrays", "Timeframe"]
