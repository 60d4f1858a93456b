"""Simple moving average crossover, and the crossing rule the other crossover strategies share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy.typing as npt

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ParameterError
from traderunner.strategies.base import Indicators, SignalArray, Strategy, StrategyParams, param
from traderunner.strategies.indicators import compare, cross_side, sma

#: The two readings of a crossover rule, the first the default (see :func:`cross_signal`).
CROSS_MODES = ("cross", "regime")
MODE_DOC = (
    "cross: trade on crossings, flat until the first one; "
    "regime: long whenever fast is above, short whenever below"
)


def cross_signal(fast: npt.ArrayLike, slow: npt.ArrayLike, mode: str) -> SignalArray:
    """The signal of a crossover rule on two series, per bar.

    * ``mode="regime"``: +1 where ``fast > slow``, -1 where ``fast < slow``, 0 where they are
      equal or either is NaN.
    * ``mode="cross"``: the side ``fast`` last crossed to: +1 from a bar where ``fast > slow``
      after it was last strictly below, -1 the other way round; bars where they are equal or
      undefined keep the previous value (a touch is not a crossing); 0 before the first bar
      where they differ. The value changes exactly on crossing bars. Strategies using it set
      ``waits_for_change``, so a run ignores the side held at its start and enters on its first
      crossing.
    """
    if mode == "regime":
        return compare(fast, slow)
    if mode == "cross":
        return cross_side(fast, slow)
    raise ParameterError(f"crossover mode must be one of {', '.join(CROSS_MODES)}, got {mode!r}")


@dataclass(frozen=True, slots=True)
class SmaCrossParams(StrategyParams):
    fast: int = param(10, low=1, high=1000, doc="bars in the fast simple moving average")
    slow: int = param(50, low=2, high=5000, doc="bars in the slow simple moving average")
    mode: str = param("cross", choices=CROSS_MODES, doc=MODE_DOC)

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"sma_cross needs fast < slow, got fast={self.fast} slow={self.slow}"
            )


class SmaCross(Strategy):
    """Trend following on two simple moving averages of the close.

    * ``sma_fast = SMA(close, fast)``, ``sma_slow = SMA(close, slow)`` (plain means of the last
      ``fast`` / ``slow`` closes, the current bar included). ``sma_slow`` is first defined on
      bar ``slow - 1``; the warm-up is those ``slow - 1`` bars.
    * ``mode="cross"`` (the default): a **crossing above** is a bar where
      ``sma_fast > sma_slow`` while on the last earlier bar where they differed
      ``sma_fast < sma_slow``; a crossing below the other way round. Target +1 (long) from a
      crossing above until the next crossing below, -1 (short) from a crossing below until
      the next crossing above. Equal averages neither cross nor end a position.
      **End of warm-up:** the target is 0 on bar ``slow - 1`` (no crossing is possible on the
      first defined bar) and stays 0 until the first crossing, which takes its side. (If the
      averages are exactly equal on bar ``slow - 1``, the first bar where they differ counts
      as that crossing.)
    * ``mode="regime"``: target +1 on every bar where ``sma_fast > sma_slow``, -1 where
      ``sma_fast < sma_slow``, 0 where equal. **End of warm-up:** bar ``slow - 1`` already
      takes the side the fast average is on, without a crossing.
    * When the engine trades long only, -1 means flat: a crossing below exits the long.
    * ``history_bars``: ``slow`` (regime), ``2 * slow`` (cross); the tolerance rule is in
      docs/strategies.md.
    """

    name = "sma_cross"
    interface_version = 2
    description = "long from SMA(fast) crossing above SMA(slow), short from crossing below"
    Params = SmaCrossParams
    params: SmaCrossParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow - 1

    @property
    def waits_for_change(self) -> bool:
        return self.params.mode == "cross"

    def history_bars(self, timeframe: Timeframe | None = None) -> int:
        # SMA(slow) on the last bar needs its last ``slow`` bars. ``cross`` holds its side
        # through exact ties, so it keeps ``slow`` more bars to find where they last differed.
        p = self.params
        return p.slow + (p.slow if p.mode == "cross" else 0)

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {
            "sma_fast": sma(candles.close, self.params.fast),
            "sma_slow": sma(candles.close, self.params.slow),
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        return cross_signal(indicators["sma_fast"], indicators["sma_slow"], self.params.mode)
