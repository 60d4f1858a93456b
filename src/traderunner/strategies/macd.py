"""MACD line against its signal line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import FloatArray, ema
from traderunner.strategies.sma_cross import cross_signal


def ema_after_nans(values: FloatArray, span: int) -> FloatArray:
    """EMA of a series whose first values are NaN: seeded on the first ``span`` defined values.

    The MACD line is NaN until the slow EMA exists; an EMA over it starts where it starts.
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full(len(x), np.nan)
    defined = np.flatnonzero(~np.isnan(x))
    if len(defined):
        first = int(defined[0])
        out[first:] = ema(x[first:], span)
    return out


@dataclass(frozen=True, slots=True)
class MacdParams(StrategyParams):
    fast: int = param(12, low=1, high=1000, doc="span of the fast EMA")
    slow: int = param(26, low=2, high=5000, doc="span of the slow EMA")
    signal: int = param(9, low=1, high=1000, doc="span of the EMA of the MACD line")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(f"macd needs fast < slow, got fast={self.fast} slow={self.slow}")


class Macd(Strategy):
    """Moving average convergence/divergence (Appel) on the close.

    * ``macd = EMA(close, fast) - EMA(close, slow)``;
      ``macd_signal = EMA(macd, signal)``, seeded on the first ``signal`` defined MACD values;
      ``macd_hist = macd - macd_signal``.
    * Target +1 (long) where ``macd > macd_signal``, -1 (short) where below, 0 where equal or
      not yet defined.
    * Warm-up: ``slow + signal - 2`` bars (the first defined ``macd_signal``). Like every EMA
      rule, a short tail of data converges to the backtest's values only after a few spans.
    """

    name = "macd"
    description = "long while the MACD line is above its signal line, short while below"
    Params = MacdParams
    params: MacdParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow + self.params.signal - 2

    def indicators(self, candles: CandleArrays) -> Indicators:
        p = self.params
        line = ema(candles.close, p.fast) - ema(candles.close, p.slow)
        signal = ema_after_nans(line, p.signal)
        return {"macd": line, "macd_signal": signal, "macd_hist": line - signal}

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return cross_signal(indicators["macd"], indicators["macd_signal"])
