"""RSI mean reversion: buy oversold, sell overbought, exit back at the middle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import (
    RSI_RESIDUAL,
    STATE_MEMORY,
    decay_bars,
    hold_crossings,
    rsi,
)


@dataclass(frozen=True, slots=True)
class RsiReversionParams(StrategyParams):
    period: int = param(14, low=2, high=500, doc="bars in Wilder's RSI")
    lower: float = param(30.0, low=0, high=100, doc="enter long when RSI falls below this")
    upper: float = param(70.0, low=0, high=100, doc="enter short when RSI rises above this")
    exit: float = param(50.0, low=0, high=100, doc="leave a position when RSI gets back here")

    def check(self) -> None:
        if not self.lower < self.exit < self.upper:
            raise ParameterError(
                "rsi_reversion needs lower < exit < upper, got "
                f"lower={self.lower:g} exit={self.exit:g} upper={self.upper:g}"
            )


class RsiReversion(Strategy):
    """Mean reversion on Wilder's RSI of the close.

    * ``rsi = RSI(close, period)`` (0..100, defined from bar ``period`` on).
    * Long (+1) from the first bar where ``rsi < lower`` until, and not including, the first
      later bar where ``rsi >= exit``; that bar is flat (0).
    * Short (-1) from the first bar where ``rsi > upper`` until the first later bar where
      ``rsi <= exit``.
    * Flat (0) otherwise. Because ``lower < exit < upper`` the two sides never overlap: a bar
      that enters a short always also ends a long, so the target goes straight from +1 to -1.
    * Warm-up: ``period`` bars (``rsi`` is first defined on bar ``period``). These are level
      rules, not crossings: **at the end of warm-up** bar ``period`` is already long if
      ``rsi < lower`` there and short if ``rsi > upper``, and flat otherwise.
    * The position depends on when the last entry happened; how many recent bars reproduce a
      backtest's target is the strategy's ``history_bars`` (see docs/strategies.md).
    """

    name = "rsi_reversion"
    interface_version = 2
    description = "long below RSI lower / short above upper, exit when RSI returns to exit"
    Params = RsiReversionParams
    params: RsiReversionParams

    @property
    def warmup_bars(self) -> int:
        return self.params.period

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # Wilder's averages of a window are seeded on its bar ``period`` and forget the seed
        # by (1 - 1/period) per bar: after k bars they are within RSI_RESIDUAL of the largest
        # one-bar move. Then STATE_MEMORY * period bars to find the bar that last reset each
        # side's state (docs/strategies.md).
        p = self.params
        k = decay_bars(1.0 - 1.0 / p.period, RSI_RESIDUAL)
        return p.period + k + STATE_MEMORY * p.period

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {"rsi": rsi(candles.close, self.params.period)}

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        p = self.params
        value = indicators["rsi"]
        with np.errstate(invalid="ignore"):
            long = hold_crossings(value < p.lower, value >= p.exit)
            short = hold_crossings(value > p.upper, value <= p.exit)
        return (long - short).astype(np.int8)
