"""Cross-check against backtesting.py on the same SMA 10/50 rules, and the input errors."""

from __future__ import annotations

import warnings
from typing import Any

import backtesting
import numpy as np
import pandas as pd
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.engine import run_backtest
from traderunner.errors import DataRangeError, OptionError, UnknownStrategyError


def _sma(values: Any, window: int) -> np.ndarray:
    return pd.Series(np.asarray(values)).rolling(window).mean().to_numpy()


class BtSmaCross(backtesting.Strategy):
    """backtesting.py version of our rule: long while SMA(10) > SMA(50), flat otherwise."""

    def init(self) -> None:
        self.fast = self.I(_sma, self.data.Close, 10)
        self.slow = self.I(_sma, self.data.Close, 50)

    def next(self) -> None:
        if self.fast[-1] > self.slow[-1]:
            if not self.position:
                self.buy()  # the default size means all equity, rounded down to whole units
        elif self.position:
            self.position.close()


def _frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # A falling start keeps SMA(10) < SMA(50) when both first exist, so both engines begin
    # flat (backtesting.py first calls next() one bar after the indicators are defined); a
    # falling end leaves both flat, so end-of-data handling does not enter the comparison.
    drift = np.r_[np.full(120, -0.004), rng.normal(0.0002, 0.012, n - 220), np.full(100, -0.004)]
    close = 100 * np.exp(np.cumsum(drift))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    index = pd.date_range("2010-01-01", periods=n, freq="D", tz="UTC")
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": 1.0}, index=index
    )


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_matches_backtesting_py(seed: int) -> None:
    df = _frame(seed, 3000)
    # Cash 1e10 on a ~100 price buys ~1e8 units, so backtesting.py's rounding to whole units
    # changes each position by at most 1e-8 of equity; over ~100 trades the total return can
    # drift by ~1e-6 at most, hence the tolerance.
    cash = 1e10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtesting.Backtest(
            df.tz_localize(None),
            BtSmaCross,
            cash=cash,
            commission=0.0,
            trade_on_close=True,
            finalize_trades=True,
        )
        stats = bt.run()
    ours = run_backtest(
        "sma_cross",
        df,
        {"fast": 10, "slow": 50},
        cash=cash,
        fill="close",
        size=1.0,
        direction="long",
    )
    assert ours.n_trades == int(stats["# Trades"]) > 20
    theirs = stats["Return [%]"] / 100
    assert ours.metrics["total_return"] == pytest.approx(theirs, rel=1e-6, abs=1e-6)
    their_trades = stats["_trades"]
    for ours_col, their_col in (("entry_time", "EntryTime"), ("exit_time", "ExitTime")):
        theirs_times = pd.DatetimeIndex(their_trades[their_col]).tz_localize("UTC")
        assert list(ours.trades[ours_col]) == list(theirs_times)
    np.testing.assert_allclose(ours.trades["entry_price"], their_trades["EntryPrice"])
    np.testing.assert_allclose(ours.trades["exit_price"], their_trades["ExitPrice"])


def _tiny(symbol: str = "") -> CandleArrays:
    n = 5
    ts = 1_704_067_200 * 10**9 + np.arange(n, dtype=np.int64) * 86_400 * 10**9
    px = np.linspace(100, 104, n)
    return CandleArrays(
        ts=ts, open=px, high=px + 1, low=px - 1, close=px, volume=np.ones(n), symbol=symbol
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fill": "tomorrow"}, "fill must be one of next_open, close"),
        ({"size": 0}, "size must be a fraction of equity in (0, 1]"),
        ({"stop_loss": 1.5}, "stop_loss is a fraction of the entry price"),
        ({"direction": "sideways"}, "direction must be one of"),
        ({"fees_bps": -1}, "fees_bps must be >= 0"),
        ({"leverage": 2}, "unknown backtest option(s) leverage"),
        ({"units": "half"}, "units must be one of fractional, whole"),
        ({"units": "whole", "lot_size": 0.5}, "lot_size must be a whole number >= 1"),
        ({"lot_size": 10}, "lot_size needs units=whole"),
    ],
)
def test_bad_options_raise_option_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError) as info:
        run_backtest("sma_cross", _tiny(), {"fast": 2, "slow": 3}, **options)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_strategy() -> None:
    with pytest.raises(UnknownStrategyError, match="sma_cross"):
        run_backtest("no_such_strategy", _tiny())


def test_empty_and_broken_candles_raise_data_range_error() -> None:
    c = _tiny()
    with pytest.raises(DataRangeError, match="no candles for"):
        run_backtest("sma_cross", c.slice(0, 0))
    with pytest.raises(DataRangeError, match="no candles given"):
        run_backtest("sma_cross", {})
    bad = c.close.copy()
    bad[3] = np.nan
    broken = CandleArrays(
        ts=c.ts, open=c.open, high=c.high, low=c.low, close=bad, volume=c.volume, symbol="BAD"
    )
    with pytest.raises(DataRangeError, match="'BAD' have a missing or non-positive price at bar 3"):
        run_backtest("sma_cross", broken)
    shuffled = CandleArrays(
        ts=c.ts[::-1].copy(),
        open=c.open,
        high=c.high,
        low=c.low,
        close=c.close,
        volume=c.volume,
        symbol="REV",
    )
    with pytest.raises(DataRangeError, match="not in time order at bar 1"):
        run_backtest("sma_cross", shuffled)
    with pytest.raises(DataRangeError, match="candles must be"):
        run_backtest("sma_cross", np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(DataRangeError, match="given twice"):
        run_backtest("sma_cross", [_tiny("X"), _tiny("X")])
