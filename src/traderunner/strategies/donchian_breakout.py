"""Donchian channel breakout (the Turtle rule)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import (
    STATE_MEMORY,
    hold_crossings,
    rolling_max,
    rolling_min,
    shift,
)


@dataclass(frozen=True, slots=True)
class DonchianBreakoutParams(StrategyParams):
    entry: int = param(20, low=1, high=5000, doc="bars in the breakout channel")
    exit: int = param(10, low=1, high=5000, doc="bars in the (tighter) exit channel")

    def check(self) -> None:
        if self.exit > self.entry:
            raise ParameterError(
                "donchian_breakout needs exit <= entry (the exit channel is the tighter one), "
                f"got entry={self.entry} exit={self.exit}"
            )


class DonchianBreakout(Strategy):
    """Channel breakout on the highs and lows of previous bars.

    Channels exclude the current bar: ``entry_high`` is the highest high of the ``entry`` bars
    before this one, ``entry_low`` the lowest low; ``exit_high`` / ``exit_low`` the same over
    the previous ``exit`` bars.

    * Long (+1) from the first bar whose close is above ``entry_high`` until, and not
      including, the first later bar whose close is below ``exit_low``.
    * Short (-1) from the first close below ``entry_low`` until the first close above
      ``exit_high``.
    * Flat otherwise. With ``exit <= entry`` a close below ``entry_low`` is also below
      ``exit_low``, so a short entry ends a long on the same bar (and vice versa).
    * Warm-up: ``entry`` bars (the channels are first defined on bar ``entry``). A breakout is
      an event on its own bar: **at the end of warm-up** bar ``entry`` is long if its close is
      above ``entry_high`` (a new ``entry``-bar high) and short if below ``entry_low``, flat
      otherwise.
    """

    name = "donchian_breakout"
    interface_version = 2
    description = "long on a close above the prior entry-bar high, exit below the exit-bar low"
    Params = DonchianBreakoutParams
    params: DonchianBreakoutParams

    @property
    def warmup_bars(self) -> int:
        return self.params.entry

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # The channels need the ``entry`` bars before the current one; the hold rule then
        # looks back STATE_MEMORY * entry bars for the bar that last reset each side's state.
        return self.params.entry + 1 + STATE_MEMORY * self.params.entry

    def indicators(self, candles: CandleArrays) -> Indicators:
        p = self.params
        return {
            "entry_high": shift(rolling_max(candles.high, p.entry), 1),
            "entry_low": shift(rolling_min(candles.low, p.entry), 1),
            "exit_high": shift(rolling_max(candles.high, p.exit), 1),
            "exit_low": shift(rolling_min(candles.low, p.exit), 1),
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        close = candles.close
        with np.errstate(invalid="ignore"):
            long = hold_crossings(close > indicators["entry_high"], close < indicators["exit_low"])
            short = hold_crossings(close < indicators["entry_low"], close > indicators["exit_high"])
        return (long - short).astype(np.int8)
