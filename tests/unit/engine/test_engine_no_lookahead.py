"""No look-ahead: changing bars after t changes nothing the engine reported up to bar t."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.enginehelpers import GivenTargets

from traderunner.domain.candles import CandleArrays
from traderunner.engine import BacktestResult, run_backtest
from traderunner.strategies import get_strategy
from traderunner.strategies.base import Indicators, SignalArray, Strategy

DAY_NS = 86_400 * 10**9


def _ohlc(rng: np.random.Generator, n: int) -> CandleArrays:
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.02, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.02, n)))
    return CandleArrays(
        ts=1_704_067_200 * 10**9 + np.arange(n, dtype=np.int64) * DAY_NS,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=np.ones(n),
        symbol="H",
    )


def _change_after(c: CandleArrays, t: int, rng: np.random.Generator) -> CandleArrays:
    """Same bars up to t, different (still valid) bars after it."""
    other = _ohlc(rng, len(c))

    def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([a[: t + 1], b[t + 1 :]])

    return CandleArrays(
        ts=c.ts,
        open=mix(c.open, other.open),
        high=mix(c.high, other.high),
        low=mix(c.low, other.low),
        close=mix(c.close, other.close),
        volume=c.volume,
        symbol="H",
    )


def _closed_by(result: BacktestResult, t: int) -> list[tuple[Any, ...]]:
    """Trades that were closed on or before bar t (not marked at the end of the data)."""
    trades = result.trades
    last = result.equity.index[t]
    done = trades[(trades["exit_time"] <= last) & (trades["exit_reason"] != "end")]
    return [tuple(row) for row in done.itertuples(index=False)]


OPTIONS = st.fixed_dictionaries(
    {
        "fill": st.sampled_from(["next_open", "close"]),
        "direction": st.sampled_from(["long", "short", "both"]),
        "fees_bps": st.sampled_from([0.0, 5.0]),
        "slippage_bps": st.sampled_from([0.0, 3.0]),
        "stop_loss": st.sampled_from([None, 0.02, 0.05]),
        "take_profit": st.sampled_from([None, 0.03]),
        "trailing_stop": st.sampled_from([None, 0.04]),
    }
)


def _assert_same_until(a: BacktestResult, b: BacktestResult, t: int) -> None:
    np.testing.assert_array_equal(a.equity.to_numpy()[: t + 1], b.equity.to_numpy()[: t + 1])
    pa = next(iter(a.symbols.values())).position
    pb = next(iter(b.symbols.values())).position
    np.testing.assert_array_equal(pa[: t + 1], pb[: t + 1])
    assert _closed_by(a, t) == _closed_by(b, t)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    cut=st.floats(0, 1),
    options=OPTIONS,
)
def test_random_targets_have_no_lookahead(
    seed: int, n: int, cut: float, options: dict[str, Any]
) -> None:
    rng = np.random.default_rng(seed)
    candles = _ohlc(rng, n)
    t = min(int(cut * n), n - 1)
    targets = rng.integers(-1, 2, n).astype(np.int8)
    changed_targets = np.concatenate([targets[: t + 1], rng.integers(-1, 2, n)[t + 1 :]])
    changed = _change_after(candles, t, rng)
    a = run_backtest(GivenTargets(targets), candles, **options)
    b = run_backtest(GivenTargets(changed_targets), changed, **options)
    _assert_same_until(a, b, t)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 80),
    cut=st.floats(0, 1),
    fast=st.integers(1, 4),
    slow=st.integers(5, 10),
    options=OPTIONS,
)
def test_sma_cross_has_no_lookahead(
    seed: int, n: int, cut: float, fast: int, slow: int, options: dict[str, Any]
) -> None:
    rng = np.random.default_rng(seed)
    candles = _ohlc(rng, n)
    t = min(int(cut * n), n - 1)
    changed = _change_after(candles, t, rng)
    params = {"fast": fast, "slow": slow}
    strategy = get_strategy("sma_cross")(params)
    np.testing.assert_array_equal(
        strategy.target_positions(candles)[: t + 1], strategy.target_positions(changed)[: t + 1]
    )
    a = run_backtest("sma_cross", candles, params, **options)
    b = run_backtest("sma_cross", changed, params, **options)
    _assert_same_until(a, b, t)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), options=OPTIONS)
def test_truncated_data_agrees_with_the_full_run(
    seed: int, n: int, options: dict[str, Any]
) -> None:
    # Running on the first t+1 bars only must report the same curve as the full run.
    rng = np.random.default_rng(seed)
    candles = _ohlc(rng, n)
    targets = rng.integers(-1, 2, n).astype(np.int8)
    t = int(rng.integers(0, n))
    full = run_backtest(GivenTargets(targets), candles, **options)
    part = run_backtest(GivenTargets(targets[: t + 1]), candles.slice(0, t + 1), **options)
    np.testing.assert_array_equal(full.equity.to_numpy()[: t + 1], part.equity.to_numpy())
    assert _closed_by(full, t) == _closed_by(part, t)


class PeekingStrategy(Strategy):
    """Deliberately broken: goes long when the *next* close is higher (look-ahead)."""

    name = "peeking"

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {}

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        nxt = np.append(candles.close[1:], candles.close[-1])
        return (nxt > candles.close).astype(np.int8)


def test_the_check_catches_a_peeking_strategy() -> None:
    # The harness above must be able to fail: a strategy that reads bar t+1 is caught.
    rng = np.random.default_rng(7)
    candles = _ohlc(rng, 50)
    caught = 0
    for t in range(5, 45, 5):
        changed = _change_after(candles, t, rng)
        a = run_backtest(PeekingStrategy(), candles, fill="close")
        b = run_backtest(PeekingStrategy(), changed, fill="close")
        try:
            _assert_same_until(a, b, t)
        except AssertionError:
            caught += 1
    assert caught >= 4
