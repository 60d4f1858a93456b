"""The live signal service's one computation: a strategy's target on the last bar of a window. Pure.

The live service keeps, per symbol and timeframe, the most recent bars and after each closed
bar asks :func:`target_at_last_bar` for the target position. The strategy contract (version 2)
makes that the backtest's target:

* pass the last ``strategy.history_bars(timeframe)`` bars up to and including the new bar
  (all bars there are when fewer exist: then the window *is* the whole history);
* the result is ``signals()`` of the whole history at that bar, within the strategy's tolerance
  rule (docs/strategies.md, "History for live signals"), and 0 while the history is still in
  the warm-up, as in a backtest;
* the run-start rule is the session's to apply: when ``strategy.waits_for_change`` is true, a
  live session that starts on bar ``s`` stays flat until the target differs from the one on bar
  ``s``, exactly as a backtest starting there would (``Strategy.target_positions``).

A longer window is fine (the extra bars change nothing beyond the tolerance rule); a shorter one
gives no guarantee.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traderunner.domain.candles import CandleArrays
from traderunner.errors import ParameterError
from traderunner.strategies.base import Strategy, StrategyParams
from traderunner.strategies.registry import get_strategy


def target_at_last_bar(
    strategy: Strategy | type[Strategy] | str,
    params: StrategyParams | Mapping[str, Any] | None,
    candles_window: CandleArrays,
) -> int:
    """The target position (-1, 0 or 1) on the last bar of ``candles_window``.

    ``strategy`` is a registered name, a Strategy class (built with ``params``) or a Strategy
    instance (then ``params`` must be None: the instance has its own). ``candles_window`` holds
    the last ``history_bars(candles_window.timeframe)`` bars, oldest first, or the whole history
    when it is shorter. Returns 0 when the window is the whole history and it has not passed
    the warm-up (``len(candles_window) <= warmup_bars``). Raises ParameterError for an empty
    window, bad parameters or a Strategy instance given with params, and StrategyError when
    the strategy's own code fails.
    """
    if isinstance(strategy, Strategy):
        if params is not None:
            raise ParameterError(
                f"target_at_last_bar: strategy {strategy.name!r} is already built with its "
                "parameters; pass params=None"
            )
        instance = strategy
    else:
        cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
        instance = cls(params)
    n = len(candles_window)
    if n == 0:
        raise ParameterError(
            f"target_at_last_bar: the window for {instance.name!r} has no bars; pass the last "
            f"{instance.history_bars(candles_window.timeframe)} bars"
        )
    if n <= max(int(instance.warmup_bars), 0):
        return 0
    return int(instance.checked_signals(candles_window)[-1])
