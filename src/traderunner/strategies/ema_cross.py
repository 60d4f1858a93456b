"""Exponential moving average crossover."""

from __future__ import annotations

from dataclasses import dataclass

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import EMA_RESIDUAL, decay_bars, ema, ema_alpha
from traderunner.strategies.sma_cross import CROSS_MODES, MODE_DOC, cross_signal


@dataclass(frozen=True, slots=True)
class EmaCrossParams(StrategyParams):
    fast: int = param(12, low=1, high=1000, doc="span of the fast exponential moving average")
    slow: int = param(26, low=2, high=5000, doc="span of the slow exponential moving average")
    mode: str = param("cross", choices=CROSS_MODES, doc=MODE_DOC)

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"ema_cross needs fast < slow, got fast={self.fast} slow={self.slow}"
            )


class EmaCross(Strategy):
    """Trend following on two exponential moving averages of the close.

    * ``ema_fast = EMA(close, fast)``, ``ema_slow = EMA(close, slow)`` with
      ``alpha = 2 / (span + 1)``, each seeded with the simple mean of its first ``span`` closes
      (see ``indicators.ema``). ``ema_slow`` is first defined on bar ``slow - 1``; the warm-up
      is those ``slow - 1`` bars.
    * ``mode="cross"`` (the default): target +1 (long) from a bar where ``ema_fast`` crosses
      above ``ema_slow`` (``ema_fast > ema_slow`` while on the last earlier bar where they
      differed it was below) until the next crossing below, -1 (short) from a crossing below
      until the next crossing above; equal values neither cross nor end a position.
      **End of warm-up:** the target is 0 on bar ``slow - 1`` and stays 0 until the first
      crossing, which takes its side (exactly equal EMAs on bar ``slow - 1``: the first bar
      where they differ counts as that crossing).
    * ``mode="regime"``: target +1 where ``ema_fast > ema_slow``, -1 where below, 0 where
      equal. **End of warm-up:** bar ``slow - 1`` already takes the side the fast EMA is on.
    * An EMA remembers all of its history: how many recent bars reproduce a backtest's target
      is the strategy's ``history_bars`` (see docs/strategies.md).
    """

    name = "ema_cross"
    interface_version = 2
    description = "long from EMA(fast) crossing above EMA(slow), short from crossing below"
    Params = EmaCrossParams
    params: EmaCrossParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow - 1

    @property
    def waits_for_change(self) -> bool:
        return self.params.mode == "cross"

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # A window's slow EMA is seeded on bar slow - 1 of the window, at most the price range
        # R away from the backtest's; k bars later both EMAs are within (1 - alpha_slow)**k * R
        # (the fast one forgets faster and started earlier), so fast - slow is within
        # EMA_RESIDUAL * R. ``cross`` keeps ``slow`` more bars to look through exact ties.
        p = self.params
        k = decay_bars(1.0 - ema_alpha(p.slow), EMA_RESIDUAL / 2)
        return p.slow - 1 + k + (p.slow if p.mode == "cross" else 1)

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {
            "ema_fast": ema(candles.close, self.params.fast),
            "ema_slow": ema(candles.close, self.params.slow),
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return cross_signal(indicators["ema_fast"], indicators["ema_slow"], self.params.mode)
