"""MACD line against its signal line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import EMA_RESIDUAL, FloatArray, decay_bars, ema, ema_alpha
from traderunner.strategies.sma_cross import CROSS_MODES, cross_signal


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
    mode: str = param(
        "cross",
        choices=CROSS_MODES,
        doc="cross: trade on crossings of the signal line, flat until the first one; "
        "regime: long whenever MACD is above its signal line, short whenever below",
    )

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(f"macd needs fast < slow, got fast={self.fast} slow={self.slow}")


class Macd(Strategy):
    """Moving average convergence/divergence (Appel) on the close.

    * ``macd = EMA(close, fast) - EMA(close, slow)``;
      ``macd_signal = EMA(macd, signal)``, seeded on the first ``signal`` defined MACD values;
      ``macd_hist = macd - macd_signal``.
    * ``macd_signal`` is first defined on bar ``slow + signal - 2``; the warm-up is those
      ``slow + signal - 2`` bars.
    * ``mode="cross"`` (the default): target +1 (long) from a bar where ``macd`` crosses
      above ``macd_signal`` (``macd > macd_signal`` while on the last earlier bar where they
      differed it was below) until the next crossing below, -1 (short) from a crossing below
      until the next crossing above; equal values neither cross nor end a position.
      **End of warm-up:** the target is 0 on bar ``slow + signal - 2`` and stays 0 until the
      first crossing, which takes its side (exactly equal lines on that bar: the first bar
      where they differ counts as that crossing).
    * ``mode="regime"``: target +1 where ``macd > macd_signal``, -1 where below, 0 where equal.
      **End of warm-up:** bar ``slow + signal - 2`` already takes the side MACD is on.
    * Like every EMA rule, how many recent bars reproduce a backtest's target is the
      strategy's ``history_bars`` (see docs/strategies.md).
    """

    name = "macd"
    interface_version = 2
    description = "long from MACD crossing above its signal line, short from crossing below"
    Params = MacdParams
    params: MacdParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow + self.params.signal - 2

    @property
    def waits_for_change(self) -> bool:
        return self.params.mode == "cross"

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # The MACD line of a window is within 2R(1 - a_slow)**j of the backtest's j bars after
        # its slow seed (bar slow - 1); the signal line, seeded signal - 1 bars later, within
        # 4R(1 - a_signal)**k_sig plus the line's error k_sig bars back (docs/strategies.md).
        # Each of the three terms is held to EMA_RESIDUAL * R / 4.
        p = self.params
        k_slow = decay_bars(1.0 - ema_alpha(p.slow), EMA_RESIDUAL / 8)
        k_signal = decay_bars(1.0 - ema_alpha(p.signal), EMA_RESIDUAL / 8)
        settled = p.slow - 1 + k_signal + max(p.signal - 1, k_slow)
        return settled + (p.slow if p.mode == "cross" else 1)

    def indicators(self, candles: CandleArrays) -> Indicators:
        p = self.params
        line = ema(candles.close, p.fast) - ema(candles.close, p.slow)
        signal = ema_after_nans(line, p.signal)
        return {"macd": line, "macd_signal": signal, "macd_hist": line - signal}

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return cross_signal(indicators["macd"], indicators["macd_signal"], self.params.mode)
