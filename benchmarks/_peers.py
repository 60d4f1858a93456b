"""The contestants other than traderunner: vectorbt, backtesting.py and a plain NumPy loop.

Every runner implements the same rule: SMA(fast)/SMA(slow) crossover, long while fast > slow
and flat otherwise, filled at the bar's close, all equity in, no fees. Each takes its input
already built (a close Series, an OHLC frame) so only the backtest itself is timed.

The peers get a tz-naive DatetimeIndex (the same instants, UTC implied): vectorbt 1.2 turns a
tz-aware index into an array of Timestamp objects in its shape checks, which costs it ~10 s per
1M bars and would measure a pandas-3 slow path instead of vectorbt.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from _common import sma_np

# backtesting.py draws a tqdm bar per run when tqdm is installed (vectorbt pulls it in).
os.environ.setdefault("TQDM_DISABLE", "1")


def _vbt_crossover(close: Any, fast: Any, slow: Any, cash: float) -> Any:
    """vectorbt's portfolio for the rule: MA.run per side (a window, or a list giving one
    column per entry), crossings, one from_signals."""
    import vectorbt as vbt

    fast_ma = vbt.MA.run(close, fast, short_name="fast")
    slow_ma = vbt.MA.run(close, slow, short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    return vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        init_cash=cash,
        fees=0.0,
        size=np.inf,
        accumulate=False,
        freq="5min",
    )


def vbt_backtest(close: Any, fast: int, slow: int, cash: float) -> tuple[float, int]:
    """vectorbt: MA.run for both windows, crossings, from_signals; (total return, trades).

    ``trades.count()`` counts a trade still open at the end, like our ``end`` exit.
    """
    pf = _vbt_crossover(close, fast, slow, cash)
    return float(pf.total_return()), int(pf.trades.count())


def vbt_sweep(
    close: Any, combos: Sequence[tuple[int, int]], cash: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """vectorbt's fastest fair sweep: one MA.run per side with a window list (one column per
    combo), crossings on all columns, one from_signals on all of them. Returns per-combo
    (total return, trades) in ``combos`` order."""
    pf = _vbt_crossover(close, [f for f, _ in combos], [s for _, s in combos], cash)
    # Columns come back in input order as a (fast_window, slow_window) MultiIndex.
    return (
        np.asarray(pf.total_return().to_numpy(), dtype=np.float64),
        np.asarray(pf.trades.count().to_numpy(), dtype=np.int64),
    )


def bt_has_finalize() -> bool:
    """True when this backtesting.py can close open trades at the end (finalize_trades)."""
    from backtesting import Backtest

    return "finalize_trades" in inspect.signature(Backtest.__init__).parameters


def bt_backtest(frame: Any, fast: int, slow: int, cash: float) -> tuple[float, int]:
    """backtesting.py: trade_on_close, exclusive_orders, no commission; (total return, trades).

    Orders are whole units, so ``cash`` must be large against the price (see the README).
    """
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class SmaCross(Strategy):
        n_fast = fast
        n_slow = slow

        def init(self) -> None:
            self.fast_ma = self.I(sma_np, self.data.Close, self.n_fast)
            self.slow_ma = self.I(sma_np, self.data.Close, self.n_slow)

        def next(self) -> None:
            if crossover(self.fast_ma, self.slow_ma):
                self.buy()
            elif crossover(self.slow_ma, self.fast_ma):
                self.position.close()

    extra = {"finalize_trades": True} if bt_has_finalize() else {}
    bt = Backtest(
        frame,
        SmaCross,
        cash=cash,
        commission=0.0,
        trade_on_close=True,
        exclusive_orders=True,
        **extra,
    )
    stats = bt.run()
    return float(stats["Return [%]"]) / 100.0, int(stats["# Trades"])


def numpy_sweep(
    close: npt.NDArray[np.float64], combos: Sequence[tuple[int, int]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The plain-NumPy reference: per combo, two cumsum SMAs and a vectorised close-fill
    long-only compounded return. Returns per-combo (total return, trades)."""
    bar_ret = np.zeros(len(close))
    bar_ret[1:] = close[1:] / close[:-1] - 1.0
    totals = np.empty(len(combos))
    trades = np.empty(len(combos), dtype=np.int64)
    for k, (fast, slow) in enumerate(combos):
        # NaN compares False, so the warm-up is flat by construction.
        long = sma_np(close, fast) > sma_np(close, slow)
        # Held after the close of bar t-1 -> earns bar t's close-to-close return.
        totals[k] = float(np.prod(1.0 + long[:-1] * bar_ret[1:]) - 1.0)
        trades[k] = int(long[0]) + int(np.count_nonzero(long[1:] & ~long[:-1]))
    return totals, trades
