"""Builders of real candle data for the strategy tests (random walks on a session grid)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.strategies import clear_user_strategies

NY = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")

CandleBuilder = Callable[..., CandleArrays]


def session_timestamps(
    first_day: date,
    days: int,
    *,
    step_minutes: int = 5,
    start: time = time(9, 30),
    end: time = time(16, 0),
    tz: ZoneInfo = NY,
) -> list[int]:
    """Bar open times (UTC ns) of ``days`` weekdays from ``first_day``, ``start`` to ``end``."""
    out: list[int] = []
    day = first_day
    done = 0
    while done < days:
        if day.weekday() < 5:
            t = datetime.combine(day, start, tzinfo=tz)
            stop = datetime.combine(day, end, tzinfo=tz)
            while t < stop:
                out.append(int(t.astimezone(UTC).timestamp()) * 1_000_000_000)
                t += timedelta(minutes=step_minutes)
            done += 1
        day += timedelta(days=1)
    return out


def walk(ts: list[int] | np.ndarray, seed: int, timeframe: Timeframe | None) -> CandleArrays:
    """Geometric random-walk OHLCV on the given timestamps."""
    rng = np.random.default_rng(seed)
    n = len(ts)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) if n else close.copy()
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.002, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.002, n))
    return CandleArrays(
        ts=np.asarray(ts, dtype=np.int64),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=rng.uniform(100.0, 1000.0, n),
        symbol="TEST",
        timeframe=timeframe,
        source="synthetic",
    )


def _intraday(
    seed: int = 0,
    days: int = 20,
    *,
    first_day: date = date(2024, 1, 2),
    gap_prob: float = 0.0,
    extended: bool = False,
    timeframe: Timeframe | None = Timeframe.M5,
) -> CandleArrays:
    start, end = (time(8, 0), time(17, 30)) if extended else (time(9, 30), time(16, 0))
    ts = np.asarray(session_timestamps(first_day, days, start=start, end=end), dtype=np.int64)
    if gap_prob > 0:
        keep = np.random.default_rng(seed + 1).uniform(size=len(ts)) >= gap_prob
        ts = ts[keep]
    return walk(ts, seed, timeframe)


@pytest.fixture(scope="session")
def intraday_candles() -> CandleBuilder:
    """``intraday_candles(seed, days, first_day=, gap_prob=, extended=, timeframe=)``."""
    return _intraday


@pytest.fixture(scope="session")
def make_walk() -> Callable[..., CandleArrays]:
    """``make_walk(ts, seed, timeframe)``: a random walk on explicit timestamps."""
    return walk


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """No user strategies before or after the test (built-ins always stay)."""
    clear_user_strategies()
    yield
    clear_user_strategies()
