"""Helpers shared by the store tests: building valid candles and comparing them."""

from __future__ import annotations

import numpy as np

from traderunner.domain import CandleArrays, Timeframe

NS = 1_000_000_000
# 2024-01-02 14:30:00 UTC, a Tuesday at the New York open.
T0 = 1_704_205_800


def make_candles(
    n: int,
    symbol: str = "AAPL",
    start: int = T0,
    step: int = 300,
    price: float = 100.0,
    source: str = "test",
    seed: int = 0,
    timeframe: Timeframe = Timeframe.M5,
) -> CandleArrays:
    """Valid bars (low <= open, close <= high) on a random walk around ``price``.

    ``start`` and ``step`` are epoch seconds (M5 spacing by default).
    """
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[price], close[:-1]])[:n]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    return CandleArrays(
        ts=(start + step * np.arange(n, dtype=np.int64)) * NS,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=rng.integers(100, 10_000, n).astype(np.float64),
        symbol=symbol,
        timeframe=timeframe,
        source=source,
    )


def assert_same_bars(got: CandleArrays, want: CandleArrays) -> None:
    """Every column equal, value for value."""
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.ts, want.ts)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
