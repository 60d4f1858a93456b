"""Fixtures for the engine tests: hand-built candles and seeded random walks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe

DAY_NS = 86_400 * 10**9
START_NS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 10**9

#: Seven daily bars (open, high, low, close) used by the hand-computed tests.
BARS = (
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 103.0, 99.0, 102.0),
    (104.0, 106.0, 103.0, 105.0),
    (105.0, 107.0, 104.0, 106.0),
    (106.0, 108.0, 100.0, 101.0),
    (101.0, 102.0, 98.0, 99.0),
    (99.0, 100.0, 97.0, 98.0),
)


def candles_from_rows(
    rows: Sequence[Sequence[float]],
    symbol: str = "TEST",
    start_ns: int = START_NS,
    step_ns: int = DAY_NS,
) -> CandleArrays:
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    n = len(arr)
    return CandleArrays(
        ts=start_ns + np.arange(n, dtype=np.int64) * step_ns,
        open=arr[:, 0].copy(),
        high=arr[:, 1].copy(),
        low=arr[:, 2].copy(),
        close=arr[:, 3].copy(),
        volume=np.ones(n),
        symbol=symbol,
        timeframe=Timeframe.D1 if step_ns == DAY_NS else None,
        source="handmade",
    )


def random_walk(
    n: int,
    seed: int = 0,
    symbol: str = "RW",
    step_ns: int = 300 * 10**9,
    start_ns: int = START_NS,
    vol: float = 0.002,
) -> CandleArrays:
    """A positive OHLC random walk: open = previous close, high/low around both."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    wiggle = np.abs(rng.normal(0.0, vol / 2, n))
    high = np.maximum(open_, close) * (1.0 + wiggle)
    low = np.minimum(open_, close) * (1.0 - wiggle)
    return CandleArrays(
        ts=start_ns + np.arange(n, dtype=np.int64) * step_ns,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.ones(n),
        symbol=symbol,
        timeframe=Timeframe.M5 if step_ns == 300 * 10**9 else None,
        source="synthetic",
    )


@pytest.fixture
def bars() -> CandleArrays:
    return candles_from_rows(BARS)


@pytest.fixture
def make_candles() -> Callable[..., CandleArrays]:
    return candles_from_rows


@pytest.fixture
def make_walk() -> Callable[..., CandleArrays]:
    return random_walk
