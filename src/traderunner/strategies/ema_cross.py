"""Exponential moving average crossover."""

from __future__ import annotations

from dataclasses import dataclass

from traderunner.domain.candles import CandleArrays
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import ema
from traderunner.strategies.sma_cross import cross_signal


@dataclass(frozen=True, slots=True)
class EmaCrossParams(StrategyParams):
    fast: int = param(12, low=1, high=1000, doc="span of the fast exponential moving average")
    slow: int = param(26, low=2, high=5000, doc="span of the slow exponential moving average")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"ema_cross needs fast < slow, got fast={self.fast} slow={self.slow}"
            )


class EmaCross(Strategy):
    """Trend following on two exponential moving averages of the close.

    * ``ema_fast = EMA(close, fast)``, ``ema_slow = EMA(close, slow)`` with
      ``alpha = 2 / (span + 1)``, each seeded with the simple mean of its first ``span`` closes
      (see ``indicators.ema``).
    * Target +1 (long) where ``ema_fast > ema_slow``, -1 (short) where ``ema_fast < ema_slow``,
      0 where equal or ``ema_slow`` is not yet defined.
    * Warm-up: ``slow - 1`` bars, the first bar where the slow EMA is defined. An EMA remembers
      all of its history, so a signal computed on a short tail of the data (the live service)
      can differ from a backtest's until roughly ``3 * slow`` bars have passed.
    """

    name = "ema_cross"
    description = "long while EMA(fast) > EMA(slow), short while below"
    Params = EmaCrossParams
    params: EmaCrossParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow - 1

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {
            "ema_fast": ema(candles.close, self.params.fast),
            "ema_slow": ema(candles.close, self.params.slow),
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return cross_signal(indicators["ema_fast"], indicators["ema_slow"])
