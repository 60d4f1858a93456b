"""Each built-in strategy against an independent, bar-by-bar statement of its documented rule."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from tests.builtins import BUILT_IN_STRATEGIES

from traderunner.domain.candles import CandleArrays
from traderunner.errors import ParameterError
from traderunner.strategies import Strategy, get_strategy
from traderunner.strategies.indicators import indicator_cache, rsi

BoolArray = npt.NDArray[np.bool_]
CandleBuilder = Callable[..., CandleArrays]


def reference_two_sided(
    long_in: BoolArray, long_out: BoolArray, short_in: BoolArray, short_out: BoolArray
) -> np.ndarray:
    """The docstrings' rule in plain Python: enter on ``*_in``, leave on ``*_out`` (flat bar).

    Also checks the docstrings' claim that a bar entering one side always ends the other.
    """
    state = 0
    out = np.zeros(len(long_in), dtype=np.int8)
    for i in range(len(long_in)):
        if state == 1 and short_in[i]:
            assert long_out[i], f"bar {i}: a short entry did not end the long"
        if state == -1 and long_in[i]:
            assert short_out[i], f"bar {i}: a long entry did not end the short"
        if (state == 1 and long_out[i]) or (state == -1 and short_out[i]):
            state = 0
        if state == 0:
            if long_in[i] and not long_out[i]:
                state = 1
            elif short_in[i] and not short_out[i]:
                state = -1
        out[i] = state
    return out


def reference_cross(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """The documented ``mode="cross"`` rule in plain Python, bar by bar, as the peers trade it.

    A crossing is a bar where ``fast`` is strictly on the other side of ``slow`` than on the
    last earlier bar where they differed; the target is 0 until the first crossing and then
    the side of the latest one. Documented edge: when the first defined bar is an exact tie,
    the first bar where they differ counts as a crossing.
    """
    out = np.zeros(len(fast), dtype=np.int8)
    position = 0
    last = 0  # side on the last defined bar where the two differed
    first_bar_tied: bool | None = None  # None until the first defined bar
    for i in range(len(fast)):
        if np.isnan(fast[i]) or np.isnan(slow[i]):
            out[i] = position
            continue
        side = 1 if fast[i] > slow[i] else -1 if fast[i] < slow[i] else 0
        if first_bar_tied is None:
            first_bar_tied = side == 0
            last = side
            out[i] = 0
            continue
        if side != 0:
            if (last != 0 and side != last) or (last == 0 and first_bar_tied):
                position = side
            last = side
        out[i] = position
    return out


def reference_regime(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """``mode="regime"``: the side ``fast`` is on, 0 where equal or undefined."""
    return np.where(np.isnan(slow), 0, np.where(fast > slow, 1, np.where(fast < slow, -1, 0)))


def lt(a: np.ndarray, b: np.ndarray) -> BoolArray:
    with np.errstate(invalid="ignore"):
        return np.asarray(a < b)


def run(strategy: Strategy, candles: CandleArrays) -> np.ndarray:
    return strategy.target_positions(candles)


@pytest.fixture(scope="module")
def candles() -> CandleArrays:
    rng = np.random.default_rng(42)
    n = 3000
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[50.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, n))
    ts = (np.arange(n, dtype=np.int64) + 19_000) * 86_400 * 10**9
    return CandleArrays(ts=ts, open=open_, high=high, low=low, close=close, volume=np.ones(n))


def test_sma_cross_matches_pandas_rolling_means(candles: CandleArrays) -> None:
    s = get_strategy("sma_cross")({"fast": 7, "slow": 30})
    assert s.params.mode == "cross"  # the default
    close = pd.Series(candles.close)
    fast, slow = close.rolling(7).mean().to_numpy(), close.rolling(30).mean().to_numpy()
    ind = s.indicators(candles)
    np.testing.assert_allclose(ind["sma_fast"], fast, rtol=1e-9)
    np.testing.assert_allclose(ind["sma_slow"], slow, rtol=1e-9)
    got = run(s, candles)
    np.testing.assert_array_equal(got, reference_cross(fast, slow))
    assert s.warmup_bars == 29
    # Flat from the end of the warm-up until the first crossing, which is after bar 29.
    first = int(np.flatnonzero(got)[0])
    assert first > 29
    assert np.sign(fast[first] - slow[first]) == got[first]
    assert np.sign(fast[first - 1] - slow[first - 1]) == -got[first]
    regime = get_strategy("sma_cross")({"fast": 7, "slow": 30, "mode": "regime"})
    np.testing.assert_array_equal(run(regime, candles), reference_regime(fast, slow))


def _integer_candles(close: list[float]) -> CandleArrays:
    c = np.asarray(close, dtype=np.float64)
    ts = (np.arange(len(c), dtype=np.int64) + 19_000) * 86_400 * 10**9
    return CandleArrays(ts=ts, open=c, high=c, low=c, close=c, volume=np.ones(len(c)))


def test_sma_cross_on_a_hand_computed_series_with_touches() -> None:
    # Integer closes: every SMA(2)/SMA(3) is exact, so the comparisons below are exact too.
    # Bar:           0   1   2   3   4   5   6   7   8   9  10 11  12  13  14  15  16  17
    close = [10, 11, 12, 13, 12, 14, 13, 12, 11, 12, 10, 9, 10, 11, 12, 11, 13, 12]
    close += [11, 10, 12, 11, 13]  # bars 18-22
    # SMA(2) vs SMA(3) from bar 2 on (worked out by hand): above on 2-4, equal on 5 (12 = 36/3),
    # above on 6, below on 7-9, equal on 10, below on 11-12, above on 13-15, equal on 16,
    # above on 17, below on 18-19, equal on 20, above on 21, equal on 22.
    regime = [0, 0, 1, 1, 1, 0, 1, -1, -1, -1, 0, -1, -1, 1, 1, 1, 0, 1, -1, -1, 0, 1, 0]
    # cross: flat until the first crossing (below, bar 7); touches (5, 10, 16, 22) change
    # nothing; bar 21 crosses above through the tie on bar 20.
    cross = [0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, -1, -1, -1, 1, 1]
    candles = _integer_candles(close)
    got = get_strategy("sma_cross")({"fast": 2, "slow": 3}).target_positions(candles)
    np.testing.assert_array_equal(got, cross)
    old = get_strategy("sma_cross")({"fast": 2, "slow": 3, "mode": "regime"})
    np.testing.assert_array_equal(old.target_positions(candles), regime)


def test_sma_cross_tie_on_the_first_defined_bar_counts_the_first_difference() -> None:
    # Bar 2: SMA(2) = SMA(3) = 10 (no side yet); bar 3: 10.5 > 31/3, the documented edge case.
    candles = _integer_candles([10, 10, 10, 11, 12, 11, 10, 9])
    got = get_strategy("sma_cross")({"fast": 2, "slow": 3}).target_positions(candles)
    # Bars 3-5 above (10.5 > 10.33, 11.5 > 11, 11.5 > 11.33), 6-7 below (10.5 < 11, 9.5 < 10).
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 1, 1, -1, -1])


def test_a_bad_mode_is_one_clear_line() -> None:
    for name in ("sma_cross", "ema_cross", "macd"):
        with pytest.raises(ParameterError) as err:
            get_strategy(name)({"mode": "crossing"})
        assert str(err.value) == "parameter 'mode' must be one of cross, regime, got 'crossing'"


def _ema_reference(x: np.ndarray, span: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    alpha = 2.0 / (span + 1.0)
    first = int(np.flatnonzero(~np.isnan(x))[0])
    prev = float(np.mean(x[first : first + span]))
    out[first + span - 1] = prev
    for i in range(first + span, len(x)):
        prev = alpha * x[i] + (1 - alpha) * prev
        out[i] = prev
    return out


def test_ema_cross_rule(candles: CandleArrays) -> None:
    s = get_strategy("ema_cross")({"fast": 5, "slow": 20})
    fast, slow = _ema_reference(candles.close, 5), _ema_reference(candles.close, 20)
    got = run(s, candles)
    np.testing.assert_array_equal(got, reference_cross(fast, slow))
    assert s.warmup_bars == 19
    assert not got[:20].any()
    regime = get_strategy("ema_cross")({"fast": 5, "slow": 20, "mode": "regime"})
    np.testing.assert_array_equal(run(regime, candles), reference_regime(fast, slow))


def test_macd_rule(candles: CandleArrays) -> None:
    s = get_strategy("macd")({})
    line = _ema_reference(candles.close, 12) - _ema_reference(candles.close, 26)
    signal = _ema_reference(line, 9)
    ind = s.indicators(candles)
    np.testing.assert_allclose(ind["macd"], line, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ind["macd_signal"], signal, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ind["macd_hist"], line - signal, rtol=1e-9, atol=1e-12)
    got = run(s, candles)
    np.testing.assert_array_equal(got, reference_cross(line, signal))
    # The first defined signal-line value is at bar slow + signal - 2 = 33.
    assert s.warmup_bars == 33 == int(np.flatnonzero(~np.isnan(signal))[0])
    assert not got[:34].any()
    regime = get_strategy("macd")({"mode": "regime"})
    np.testing.assert_array_equal(run(regime, candles), reference_regime(line, signal))


def wilder_rsi_reference(close: list[float] | np.ndarray, period: int) -> list[float]:
    """Wilder's RSI from its definition, one bar at a time, in plain Python floats.

    Average gain and loss start as the plain means of the first ``period`` moves (so RSI is
    first defined on bar ``period``), then ``avg = (avg * (period - 1) + move) / period``;
    ``RSI = 100 - 100 / (1 + avg_gain / avg_loss)``, 100 when there is no loss.
    """
    values = [float(v) for v in close]
    out = [math.nan] * len(values)
    if len(values) <= period:
        return out
    moves = [values[i] - values[i - 1] for i in range(1, len(values))]
    gain = sum(m for m in moves[:period] if m > 0) / period
    loss = sum(-m for m in moves[:period] if m < 0) / period
    for bar in range(period, len(values)):
        if bar > period:
            move = moves[bar - 1]
            gain = (gain * (period - 1) + max(move, 0.0)) / period
            loss = (loss * (period - 1) + max(-move, 0.0)) / period
        out[bar] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


def test_wilder_rsi_on_a_hand_computed_series() -> None:
    # period 3, moves +1 +1 -1 +2 -1. Bar 3: gain 2/3, loss 1/3, RS 2, RSI 200/3.
    # Bar 4 (+2): gain (2/3*2 + 2)/3 = 10/9, loss (1/3*2)/3 = 2/9, RS 5, RSI 250/3.
    # Bar 5 (-1): gain 20/27, loss (2/9*2 + 1)/3 = 13/27, RS 20/13, RSI 100 - 1300/33 = 2000/33.
    close = np.array([10.0, 11, 12, 11, 13, 12])
    got = rsi(close, 3)
    assert np.isnan(got[:3]).all()
    np.testing.assert_allclose(got[3:], [200 / 3, 250 / 3, 2000 / 33], rtol=1e-13)
    # Only gains: no loss at all, RSI 100; only losses: 0.
    np.testing.assert_array_equal(rsi(np.arange(10.0), 4)[4:], 100.0)
    np.testing.assert_array_equal(rsi(np.arange(10.0)[::-1].copy(), 4)[4:], 0.0)


def test_wilder_rsi_matches_the_definition_on_random_data(candles: CandleArrays) -> None:
    for period in (2, 6, 14, 50):
        expected = wilder_rsi_reference(candles.close, period)
        np.testing.assert_allclose(rsi(candles.close, period), expected, rtol=1e-10, atol=1e-9)


def test_rsi_reversion_rule(candles: CandleArrays) -> None:
    s = get_strategy("rsi_reversion")({"period": 6, "lower": 25, "upper": 75, "exit": 55})
    # The rule on an RSI computed from the definition, not on the strategy's own indicator.
    value = np.asarray(wilder_rsi_reference(candles.close, 6))
    expected = reference_two_sided(
        lt(value, 25),
        ~lt(value, 55) & ~np.isnan(value),
        lt(75, value),
        ~lt(55, value) & ~np.isnan(value),
    )
    got = run(s, candles)
    np.testing.assert_array_equal(got, expected)
    assert {-1, 1} <= set(got.tolist())


def test_bollinger_reversion_rule(candles: CandleArrays) -> None:
    s = get_strategy("bollinger_reversion")({"window": 15, "k": 1.5})
    close = pd.Series(candles.close)
    mid = close.rolling(15).mean().to_numpy()
    std = close.rolling(15).std(ddof=0).to_numpy()
    ind = s.indicators(candles)
    np.testing.assert_allclose(ind["bb_upper"], mid + 1.5 * std, rtol=1e-7)
    np.testing.assert_allclose(ind["bb_lower"], mid - 1.5 * std, rtol=1e-7)
    c = candles.close
    expected = reference_two_sided(
        lt(c, ind["bb_lower"]),
        ~lt(c, ind["bb_middle"]) & ~np.isnan(mid),
        lt(ind["bb_upper"], c),
        ~lt(ind["bb_middle"], c) & ~np.isnan(mid),
    )
    np.testing.assert_array_equal(run(s, candles), expected)


def test_donchian_breakout_rule(candles: CandleArrays) -> None:
    s = get_strategy("donchian_breakout")({"entry": 20, "exit": 10})
    high, low = pd.Series(candles.high), pd.Series(candles.low)
    entry_high = high.rolling(20).max().shift(1).to_numpy()
    entry_low = low.rolling(20).min().shift(1).to_numpy()
    exit_high = high.rolling(10).max().shift(1).to_numpy()
    exit_low = low.rolling(10).min().shift(1).to_numpy()
    c = candles.close
    expected = reference_two_sided(
        lt(entry_high, c), lt(c, exit_low), lt(c, entry_low), lt(exit_high, c)
    )
    got = run(s, candles)
    np.testing.assert_array_equal(got, expected)
    ind = s.indicators(candles)
    np.testing.assert_array_equal(ind["entry_high"], entry_high)
    np.testing.assert_array_equal(ind["exit_low"], exit_low)
    # The channel excludes the current bar, so a breakout bar's close is above it.
    entries = np.flatnonzero((got[1:] == 1) & (got[:-1] != 1)) + 1
    assert len(entries) > 0
    assert np.all(c[entries] > entry_high[entries])


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("sma_cross", {"fast": 50, "slow": 50}, "fast < slow"),
        ("ema_cross", {"fast": 30, "slow": 10}, "fast < slow"),
        ("macd", {"fast": 26, "slow": 12}, "fast < slow"),
        ("rsi_reversion", {"lower": 60}, "lower < exit < upper"),
        ("rsi_reversion", {"upper": 40}, "lower < exit < upper"),
        ("donchian_breakout", {"entry": 10, "exit": 20}, "exit <= entry"),
        ("bollinger_reversion", {"k": 0}, "below its minimum"),
        ("sma_cross", {"fast": "ten"}, "must be int"),
        ("sma_cross", {"period": 3}, "unknown parameter"),
        ("opening_range_breakout", {"tz": "New York"}, "unknown time zone"),
        ("opening_range_breakout", {"session_open": "9.30"}, "HH:MM"),
        ("opening_range_breakout", {"range_minutes": 390}, "shorter than the 390-minute"),
        (
            "opening_range_breakout",
            {"session_open": "16:00", "session_close": "09:30"},
            "must be before its close",
        ),
    ],
)
def test_bad_parameters_raise_one_clear_parameter_error(
    name: str, params: dict[str, object], needle: str
) -> None:
    with pytest.raises(ParameterError) as err:
        get_strategy(name)(params)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name",
    BUILT_IN_STRATEGIES,
)
def test_defaults_bounds_and_docs(name: str) -> None:
    cls = get_strategy(name)
    assert cls.name == name
    assert cls.description
    doc = cls.__doc__ or ""
    assert "+1" in doc
    assert "-1" in doc
    for spec in cls.param_specs():
        assert spec.doc, f"{name}.{spec.name} has no doc"
        if spec.type in (int, float):
            assert spec.low is not None
            assert spec.high is not None
            assert spec.low <= spec.default <= spec.high
    s = cls()
    assert s.warmup_bars >= 0


def test_indicators_are_shared_between_parameter_sets_inside_a_cache(
    candles: CandleArrays,
) -> None:
    # Sweeps rely on this: SMA(close, 10) is computed once for every combination using it.
    a = get_strategy("sma_cross")({"fast": 10, "slow": 40})
    b = get_strategy("sma_cross")({"fast": 10, "slow": 60})
    with indicator_cache(candles):
        assert a.indicators(candles)["sma_fast"] is b.indicators(candles)["sma_fast"]
        m1 = get_strategy("bollinger_reversion")({"window": 20, "k": 1.0})
        m2 = get_strategy("bollinger_reversion")({"window": 20, "k": 3.0})
        assert m1.indicators(candles)["bb_middle"] is m2.indicators(candles)["bb_middle"]
    assert a.indicators(candles)["sma_fast"] is not b.indicators(candles)["sma_fast"]


def test_rsi_reversion_boundaries_on_given_rsi_values(candles: CandleArrays) -> None:
    s = get_strategy("rsi_reversion")({"lower": 30, "exit": 50, "upper": 70})
    rsi = np.array([np.nan, 50, 29, 40, 49.9, 50, 60, 71, 60, 50, 80, 20, 50, 30, 70])
    expected = [0, 0, 1, 1, 1, 0, 0, -1, -1, 0, -1, 1, 0, 0, 0]
    head = candles.slice(0, len(rsi))
    np.testing.assert_array_equal(s.signals(head, {"rsi": rsi}), expected)


def test_bollinger_reversion_boundaries_on_given_bands(candles: CandleArrays) -> None:
    s = get_strategy("bollinger_reversion")()
    close = np.array([100, 94, 97, 100, 106, 103, 100, 94, 106, 95.0])
    middle = np.full(len(close), 100.0)
    bands = {"bb_middle": middle, "bb_upper": middle + 5, "bb_lower": middle - 5}
    head = CandleArrays(
        ts=candles.ts[: len(close)],
        open=close,
        high=close,
        low=close,
        close=close,
        volume=close,
    )
    # Long below 95 until a close >= 100; short above 105 until <= 100; 106 reverses a long;
    # the last close (95) ends the short and is not below the band, so it stays flat.
    np.testing.assert_array_equal(s.signals(head, bands), [0, 1, 1, 0, -1, -1, 0, 1, -1, 0])
