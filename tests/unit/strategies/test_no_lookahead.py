"""Every built-in is free of look-ahead, and trades on random-walk data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.strategies import available_strategies, get_strategy, strategy_origin

CandleBuilder = Callable[..., CandleArrays]


@st.composite
def _ordered(draw: st.DrawFn, low: int, high: int, gap: int = 1) -> tuple[int, int]:
    a = draw(st.integers(low, high - gap))
    return a, draw(st.integers(a + gap, high))


PARAMS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "sma_cross": _ordered(1, 40).map(lambda p: {"fast": p[0], "slow": p[1]}),
    "ema_cross": _ordered(1, 40).map(lambda p: {"fast": p[0], "slow": p[1]}),
    "macd": st.tuples(_ordered(1, 30), st.integers(1, 12)).map(
        lambda p: {"fast": p[0][0], "slow": p[0][1], "signal": p[1]}
    ),
    "rsi_reversion": st.tuples(
        st.integers(2, 20), st.floats(5, 45), st.floats(46, 54), st.floats(55, 95)
    ).map(lambda p: {"period": p[0], "lower": p[1], "exit": p[2], "upper": p[3]}),
    "bollinger_reversion": st.tuples(st.integers(2, 40), st.floats(0.1, 3.0)).map(
        lambda p: {"window": p[0], "k": p[1]}
    ),
    "donchian_breakout": _ordered(1, 40, gap=0).map(lambda p: {"exit": p[0], "entry": p[1]}),
    "opening_range_breakout": st.tuples(st.integers(1, 90), st.integers(0, 60)).map(
        lambda p: {"range_minutes": p[0], "exit_minutes_before_close": p[1]}
    ),
}


BUILTIN_NAMES = sorted(PARAMS)


def test_every_builtin_is_covered_and_registered() -> None:
    builtins = {n for n in available_strategies() if strategy_origin(n) == "built-in"}
    assert builtins == set(BUILTIN_NAMES)


# Dates that straddle both 2024 US daylight-saving changes and a half day (2024-11-29).
FIRST_DAYS = [date(2024, 3, 7), date(2024, 10, 31), date(2024, 11, 27), date(2024, 1, 2)]


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@given(data=st.data())
def test_truncating_after_bar_t_leaves_bars_up_to_t_unchanged(
    name: str, data: st.DataObject, intraday_candles: CandleBuilder
) -> None:
    params = data.draw(PARAMS[name], label="params")
    candles = intraday_candles(
        seed=data.draw(st.integers(0, 10_000), label="seed"),
        days=data.draw(st.integers(1, 4), label="days"),
        first_day=data.draw(st.sampled_from(FIRST_DAYS), label="first_day"),
        gap_prob=data.draw(st.sampled_from([0.0, 0.1, 0.4]), label="gap_prob"),
        extended=data.draw(st.booleans(), label="extended"),
        timeframe=data.draw(st.sampled_from([Timeframe.M5, None]), label="timeframe"),
    )
    strategy = get_strategy(name)(params)
    full = strategy.target_positions(candles)
    full_ind = strategy.indicators(candles)
    n = len(candles)
    cuts = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3), label="cuts")
    for t in cuts:
        head = candles.slice(0, t + 1)
        np.testing.assert_array_equal(strategy.target_positions(head), full[: t + 1])
        for key, values in strategy.indicators(head).items():
            np.testing.assert_array_equal(values, full_ind[key][: t + 1], err_msg=key)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_defaults_trade_both_sides_on_a_random_walk(
    name: str, intraday_candles: CandleBuilder
) -> None:
    # 40 days of M5 bars (3120), a random walk built here; defaults of every built-in.
    candles = intraday_candles(seed=11, days=40)
    target = get_strategy(name)().target_positions(candles)
    assert target.dtype == np.int8
    assert set(np.unique(target).tolist()) <= {-1, 0, 1}
    prev = np.concatenate([[0], target[:-1]])
    long_entries = int(np.sum((target == 1) & (prev != 1)))
    short_entries = int(np.sum((target == -1) & (prev != -1)))
    assert long_entries >= 5, long_entries
    assert short_entries >= 5, short_entries


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_warmup_bars_are_flat_and_a_short_input_does_not_crash(
    name: str, intraday_candles: CandleBuilder
) -> None:
    strategy = get_strategy(name)()
    candles = intraday_candles(seed=2, days=3)
    target = strategy.target_positions(candles)
    assert not target[: strategy.warmup_bars].any()
    for n in (0, 1, 2):
        assert len(strategy.target_positions(candles.slice(0, n))) == n
