"""Bollinger band mean reversion: fade closes outside the bands, exit at the middle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import STATE_MEMORY, hold_crossings, rolling_std, sma


@dataclass(frozen=True, slots=True)
class BollingerReversionParams(StrategyParams):
    window: int = param(20, low=2, high=5000, doc="bars in the moving average and deviation")
    k: float = param(2.0, low=0.1, high=10.0, doc="band width in standard deviations")


class BollingerReversion(Strategy):
    """Mean reversion on Bollinger bands of the close.

    * ``bb_middle = SMA(close, window)``; ``bb_upper/bb_lower = bb_middle ± k * std`` where
      ``std`` is the population standard deviation of the last ``window`` closes.
    * Long (+1) from the first bar whose close is below ``bb_lower`` until, and not including,
      the first later bar whose close is at or above ``bb_middle``; that bar is flat.
    * Short (-1) from the first close above ``bb_upper`` until the first close at or below
      ``bb_middle``.
    * Flat otherwise. A close above the upper band is above the middle, so it ends any long on
      the same bar it starts the short (the sides never overlap).
    * Warm-up: ``window - 1`` bars (the bands are first defined on bar ``window - 1``). These
      are level rules, not crossings: **at the end of warm-up** bar ``window - 1`` is already
      long if its close is below ``bb_lower`` and short if above ``bb_upper``, flat otherwise.
    """

    name = "bollinger_reversion"
    interface_version = 2
    description = "long below the lower band / short above the upper, exit at the middle"
    Params = BollingerReversionParams
    params: BollingerReversionParams

    @property
    def warmup_bars(self) -> int:
        return self.params.window - 1

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # The bands need the last ``window`` bars; the hold rule then looks back
        # STATE_MEMORY * window bars for the bar that last reset each side's state.
        return self.params.window + STATE_MEMORY * self.params.window

    def indicators(self, candles: CandleArrays) -> Indicators:
        p = self.params
        middle = sma(candles.close, p.window)
        width = p.k * rolling_std(candles.close, p.window)
        return {"bb_middle": middle, "bb_upper": middle + width, "bb_lower": middle - width}

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        close = candles.close
        middle = indicators["bb_middle"]
        with np.errstate(invalid="ignore"):
            long = hold_crossings(close < indicators["bb_lower"], close >= middle)
            short = hold_crossings(close > indicators["bb_upper"], close <= middle)
        return (long - short).astype(np.int8)
