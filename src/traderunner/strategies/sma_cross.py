"""Simple moving average crossover."""

from __future__ import annotations

from dataclasses import dataclass

import numpy.typing as npt

from traderunner.domain.candles import CandleArrays
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import compare, sma


def cross_signal(fast: npt.ArrayLike, slow: npt.ArrayLike) -> SignalArray:
    """+1 where ``fast > slow``, -1 where ``fast < slow``, 0 where equal or either is NaN."""
    return compare(fast, slow)


@dataclass(frozen=True, slots=True)
class SmaCrossParams(StrategyParams):
    fast: int = param(10, low=1, high=1000, doc="bars in the fast simple moving average")
    slow: int = param(50, low=2, high=5000, doc="bars in the slow simple moving average")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"sma_cross needs fast < slow, got fast={self.fast} slow={self.slow}"
            )


class SmaCross(Strategy):
    """Trend following on two simple moving averages of the close.

    * ``sma_fast = SMA(close, fast)``, ``sma_slow = SMA(close, slow)`` (plain means of the last
      ``fast`` / ``slow`` closes, the current bar included).
    * Target +1 (long) on every bar where ``sma_fast > sma_slow``, -1 (short) where
      ``sma_fast < sma_slow``, 0 where they are equal or ``sma_slow`` is not yet defined.
    * So a long is entered on the bar the fast average crosses above the slow one and exited
      (reversed to short when the engine trades both directions) on the bar it crosses below.
    * Warm-up: ``slow - 1`` bars (the first bar with a full slow window is bar ``slow - 1``).
    """

    name = "sma_cross"
    description = "long while SMA(fast) > SMA(slow), short while below"
    Params = SmaCrossParams
    params: SmaCrossParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow - 1

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {
            "sma_fast": sma(candles.close, self.params.fast),
            "sma_slow": sma(candles.close, self.params.slow),
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return cross_signal(indicators["sma_fast"], indicators["sma_slow"])
