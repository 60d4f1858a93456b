"""The engine agrees with its peers on their own examples, and with a plain NumPy reference.

* backtesting.py's published example: its ``SmaCross`` 10/30 on the GOOG daily data it ships
  (read from the installed package), long and short, next-open fills, 10,000 cash, whole
  shares, no commission. backtesting.py itself runs here too, and every figure is also checked
  against the published value (rounded as published).
* Random GBM series and parameter pairs: trades and return equal an independent loop.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import backtesting
import numpy as np
import pandas as pd
import pytest
from backtesting.lib import crossover
from hypothesis import given, settings
from hypothesis import strategies as st

from traderunner.domain.candles import CandleArrays
from traderunner.engine import run_backtest

GOOG_CSV = Path(backtesting.__file__).parent / "test" / "GOOG.csv"

#: backtesting.py 0.6.6 on its GOOG SmaCross example (its documentation's figures).
PUBLISHED = {
    "closed_trades": (65, 0),
    "end_value": (51_959.95, 0.005),
    "total_return": (4.1960, 0.00005),
    "bt_sharpe": (0.584, 0.0005),
    "max_drawdown": (-0.4798, 0.00005),
    "bt_win_rate": (0.4615, 0.00005),
    "bt_exposure": (0.9399, 0.00005),
}

#: Our metric -> backtesting.py's stat, and the factor from ours to theirs.
THEIRS = {
    "end_value": ("Equity Final [$]", 1.0),
    "total_return": ("Return [%]", 100.0),
    "bt_sharpe": ("Sharpe Ratio", 1.0),
    "bt_sortino": ("Sortino Ratio", 1.0),
    "bt_return_ann": ("Return (Ann.) [%]", 100.0),
    "bt_volatility_ann": ("Volatility (Ann.) [%]", 100.0),
    "max_drawdown": ("Max. Drawdown [%]", 100.0),
    "avg_drawdown": ("Avg. Drawdown [%]", 100.0),
    "bt_win_rate": ("Win Rate [%]", 100.0),
    "bt_exposure": ("Exposure Time [%]", 100.0),
    "equity_peak": ("Equity Peak [$]", 1.0),
}


def _sma(values: Any, n: int) -> np.ndarray:
    return pd.Series(np.asarray(values)).rolling(n).mean().to_numpy()


class BtSmaCross(backtesting.Strategy):
    """backtesting.py's documented SmaCross example, written here with its public API."""

    fast = 10
    slow = 30

    def init(self) -> None:
        self.sma1 = self.I(_sma, self.data.Close, self.fast)
        self.sma2 = self.I(_sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    # The file as the package ships it: an unnamed first column of dates.
    return pd.read_csv(GOOG_CSV, index_col=0, parse_dates=True)


@pytest.fixture(scope="module")
def theirs(goog: pd.DataFrame) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return backtesting.Backtest(goog, BtSmaCross, cash=10_000, commission=0.0).run()


def check_goog_figures(metrics: dict[str, Any], closed: int, theirs: pd.Series) -> None:
    """The shared assertions of the Python and CLI tests (``metrics`` may hold None)."""
    assert closed == int(theirs["# Trades"]) == 65
    for ours_name, (their_name, factor) in THEIRS.items():
        assert metrics[ours_name] * factor == pytest.approx(theirs[their_name], rel=1e-6), ours_name
    for name, (value, rounding) in PUBLISHED.items():
        got = closed if name == "closed_trades" else metrics[name]
        assert abs(got - value) <= rounding + 1e-12, name


def test_goog_sma_cross_matches_backtesting_py(goog: pd.DataFrame, theirs: pd.Series) -> None:
    result = run_backtest(
        "sma_cross", goog, {"fast": 10, "slow": 30}, direction="both", cash=10_000, units="whole"
    )
    check_goog_figures(result.metrics, result.n_closed_trades, theirs)
    assert result.n_open_trades == 1 and result.n_trades == 66
    assert result.metrics["closed_trades"] == 65 and result.metrics["open_trades"] == 1
    # Whole shares, entries and exits on the same bars at the same prices.
    trades = theirs["_trades"]
    closed = result.closed_trades
    np.testing.assert_array_equal(closed["size"], trades["Size"])
    np.testing.assert_allclose(closed["entry_price"], trades["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(closed["exit_price"], trades["ExitPrice"], rtol=1e-12)
    np.testing.assert_allclose(closed["pnl"], trades["PnL"], rtol=1e-9)
    entries = pd.DatetimeIndex(trades["EntryTime"]).tz_localize("UTC")
    assert list(closed["entry_time"]) == list(entries)
    # Two fills per closed trade, one for the open position.
    assert len(result.fills) == 2 * 65 + 1
    # The yearly table compounds to the total return.
    yearly = result.yearly_returns
    assert list(yearly.index[[0, -1]]) == ["2004", "2013"]
    assert np.prod(1 + yearly.to_numpy()) - 1 == pytest.approx(result.metrics["total_return"])
    monthly = result.monthly_returns
    assert np.prod(1 + monthly.to_numpy()) - 1 == pytest.approx(result.metrics["total_return"])


# -- property: an independent loop on random GBM series --------------------------------------


def _gbm(seed: int, n: int) -> CandleArrays:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    ts = 1_704_067_200 * 10**9 + np.arange(n, dtype=np.int64) * 300 * 10**9
    return CandleArrays(ts=ts, open=open_, high=high, low=low, close=close, volume=np.ones(n))


def _reference(close: np.ndarray, fast: int, slow: int, cash: float) -> tuple[int, int, float]:
    """(round trips, closed ones, total return): long on a crossing above, flat on one below,
    all cash at the close, no costs; a position open at the end is valued at the last close."""
    csum = np.concatenate(([0.0], np.cumsum(close)))
    f = np.full(len(close), np.nan)
    s = np.full(len(close), np.nan)
    f[fast - 1 :] = (csum[fast:] - csum[:-fast]) / fast
    s[slow - 1 :] = (csum[slow:] - csum[:-slow]) / slow
    units = 0.0
    entries = closed = 0
    for t in range(slow, len(close)):
        up = f[t] > s[t] and f[t - 1] < s[t - 1]
        down = f[t] < s[t] and f[t - 1] > s[t - 1]
        if up and units == 0.0:
            units = cash / close[t]
            cash = 0.0
            entries += 1
        elif down and units > 0.0:
            cash = units * close[t]
            units = 0.0
            closed += 1
    return entries, closed, (cash + units * close[-1]) / 10_000.0 - 1.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(200, 3000),
    fast=st.integers(2, 30),
    gap=st.integers(1, 60),
)
def test_random_series_match_an_independent_loop(seed: int, n: int, fast: int, gap: int) -> None:
    slow = fast + gap
    candles = _gbm(seed, n)
    result = run_backtest(
        "sma_cross",
        candles,
        {"fast": fast, "slow": slow},
        fill="close",
        direction="long",
        cash=10_000,
    )
    entries, closed, ret = _reference(candles.close, fast, slow, 10_000.0)
    assert result.n_trades == entries
    assert result.n_closed_trades == closed
    assert result.metrics["total_return"] == pytest.approx(ret, rel=1e-9, abs=1e-12)
