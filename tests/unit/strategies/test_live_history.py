"""Strategy contract v2: ``signals`` on the last ``history_bars`` bars up to ``t`` gives, at ``t``,
the target ``signals`` gives on the whole series, for every built-in, within its documented
tolerance rule (docs/strategies.md, "History for live signals").

For each random series and bar ``t`` the live value is ``target_at_last_bar`` on the window
and the backtest value is the whole series' signal at ``t``. They must be equal unless the
documented exception holds at ``t``, which these tests compute on their own from the
whole series: a comparison deciding the target that is closer than the proved rounding
bound, or (hold rules) no bar of the window's last ``STATE_MEMORY`` windows reset a side's
state. A window that starts at bar 0 is the whole history and must always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.strategies import Strategy, get_strategy
from traderunner.strategies.live import target_at_last_bar

U = 2.0**-53  # unit roundoff of float64
TAU = 1e-8  # the documented relative tolerance of the moving-average comparisons
TAU_RSI = 2e-6  # RSI points, rounding included
STATE_MEMORY = 50  # the documented look-back of the hold rules, in windows
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def random_series(seed: int, n: int, vol: float, scale: float, flat: bool) -> CandleArrays:
    """A GBM close (optionally with stretches of unchanged closes) and OHLC around it."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, vol, n)
    if flat:  # runs of identical closes: ties of every moving average, RSI with no moves
        starts = np.flatnonzero(rng.uniform(size=n) < 0.01)
        for s in starts:
            steps[s : s + int(rng.integers(5, 80))] = 0.0
    close = scale * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[scale], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, vol, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, vol, n))
    ts = (np.arange(n, dtype=np.int64) + 19_000) * 86_400 * 10**9
    return CandleArrays(ts=ts, open=open_, high=high, low=low, close=close, volume=np.ones(n))


def running_max_abs(x: Floats) -> Floats:
    return np.maximum.accumulate(np.abs(x))


def check_windows(
    strategy: Strategy,
    candles: CandleArrays,
    ts: list[int],
    excused: Callable[[int], bool],
) -> int:
    """Compare live and backtest targets at each ``t``; returns how many had to be equal."""
    full = strategy.checked_signals(candles)
    h = strategy.history_bars(candles.timeframe)
    assert h >= strategy.warmup_bars + 1
    required = 0
    for t in ts:
        start = max(0, t - h + 1)
        live = target_at_last_bar(strategy, None, candles.slice(start, t + 1))
        backtest = int(full[t]) if t >= strategy.warmup_bars else 0
        if start == 0 or not excused(t):
            required += 1
            assert live == backtest, (
                f"{strategy.name} {strategy.params}: bar {t}, window of {t + 1 - start} bars "
                f"(history_bars={h}) gives {live}, the whole series {backtest}"
            )
    return required


series = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "vol": st.sampled_from([0.002, 0.01, 0.03]),
        "scale": st.sampled_from([0.5, 50.0, 20_000.0]),
        "flat": st.booleans(),
        "extra": st.integers(0, 400),
    }
)


def draw_bars(data: st.DataObject, n: int, h: int) -> list[int]:
    """A run of up to 40 consecutive bars after the first full window, and some anywhere."""
    first = data.draw(st.integers(max(0, h - 1), n - 1))
    run = list(range(first, min(n, first + data.draw(st.integers(1, 40)))))
    return run + data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=8))


def crossover_margin_excuse(margin: Floats, close: Floats) -> Callable[[int], bool]:
    """Excused at ``t`` when the two compared lines are within TAU * max|close| there."""
    scale = running_max_abs(close)

    def excused(t: int) -> bool:
        return bool(np.isnan(margin[t]) or abs(margin[t]) <= TAU * scale[t])

    return excused


@SETTINGS
@given(data=st.data(), s=series)
def test_sma_cross_live_window(data: st.DataObject, s: dict[str, Any]) -> None:
    slow = data.draw(st.integers(2, 60))
    fast = data.draw(st.integers(1, slow - 1))
    mode = data.draw(st.sampled_from(["cross", "regime"]))
    strategy = get_strategy("sma_cross")({"fast": fast, "slow": slow, "mode": mode})
    h = strategy.history_bars()
    n = h + s["extra"] + 1
    c = random_series(s["seed"], n, s["vol"], s["scale"], s["flat"])
    ind = strategy.indicators(c)
    excused = crossover_margin_excuse(ind["sma_fast"] - ind["sma_slow"], c.close)
    check_windows(strategy, c, draw_bars(data, n, h), excused)


@SETTINGS
@given(data=st.data(), s=series)
def test_ema_cross_live_window(data: st.DataObject, s: dict[str, Any]) -> None:
    slow = data.draw(st.integers(2, 40))
    fast = data.draw(st.integers(1, slow - 1))
    mode = data.draw(st.sampled_from(["cross", "regime"]))
    strategy = get_strategy("ema_cross")({"fast": fast, "slow": slow, "mode": mode})
    h = strategy.history_bars()
    n = h + s["extra"] + 1
    c = random_series(s["seed"], n, s["vol"], s["scale"], s["flat"])
    ind = strategy.indicators(c)
    excused = crossover_margin_excuse(ind["ema_fast"] - ind["ema_slow"], c.close)
    check_windows(strategy, c, draw_bars(data, n, h), excused)


@SETTINGS
@given(data=st.data(), s=series)
def test_macd_live_window(data: st.DataObject, s: dict[str, Any]) -> None:
    slow = data.draw(st.integers(2, 30))
    fast = data.draw(st.integers(1, slow - 1))
    signal = data.draw(st.integers(1, 12))
    mode = data.draw(st.sampled_from(["cross", "regime"]))
    params = {"fast": fast, "slow": slow, "signal": signal, "mode": mode}
    strategy = get_strategy("macd")(params)
    h = strategy.history_bars()
    n = h + s["extra"] + 1
    c = random_series(s["seed"], n, s["vol"], s["scale"], s["flat"])
    ind = strategy.indicators(c)
    excused = crossover_margin_excuse(ind["macd"] - ind["macd_signal"], c.close)
    check_windows(strategy, c, draw_bars(data, n, h), excused)


def wilder_averages(close: Floats, period: int) -> tuple[Floats, Floats]:
    """Wilder's average gain and loss, straight from the definition, one bar at a time."""
    n = len(close)
    gain = np.full(n, np.nan)
    loss = np.full(n, np.nan)
    if n <= period:
        return gain, loss
    moves = [close[i] - close[i - 1] for i in range(1, n)]
    g = sum(max(m, 0.0) for m in moves[:period]) / period
    lo = sum(max(-m, 0.0) for m in moves[:period]) / period
    gain[period], loss[period] = g, lo
    for i in range(period + 1, n):
        m = moves[i - 1]
        g = (g * (period - 1) + max(m, 0.0)) / period
        lo = (lo * (period - 1) + max(-m, 0.0)) / period
        gain[i], loss[i] = g, lo
    return gain, loss


def hold_excuse(
    long_resets: Bools, short_resets: Bools, clear: Bools, memory: int
) -> Callable[[int], bool]:
    """Excused at ``t`` unless each side's last reset is within ``memory`` bars and every bar
    from it to ``t`` decides its comparisons clearly (then both computations agree)."""

    def side_known(resets: Bools, t: int) -> bool:
        hits = np.flatnonzero(resets[max(0, t - memory + 1) : t + 1])
        if len(hits) == 0:
            return False
        last = max(0, t - memory + 1) + int(hits[-1])
        return bool(clear[last : t + 1].all())

    def excused(t: int) -> bool:
        return not (side_known(long_resets, t) and side_known(short_resets, t))

    return excused


@SETTINGS
@given(data=st.data(), s=series)
def test_rsi_reversion_live_window(data: st.DataObject, s: dict[str, Any]) -> None:
    period = data.draw(st.integers(2, 12))
    lower = data.draw(st.integers(5, 45))
    exit_ = data.draw(st.integers(lower + 1, lower + 30))
    upper = data.draw(st.integers(exit_ + 1, 95))
    params = {"period": period, "lower": lower, "exit": exit_, "upper": upper}
    strategy = get_strategy("rsi_reversion")(params)
    h = strategy.history_bars()
    n = h + s["extra"] + 1
    c = random_series(s["seed"], n, s["vol"], s["scale"], s["flat"])
    value = strategy.indicators(c)["rsi"]
    gain, loss = wilder_averages(c.close, period)
    largest_move = np.concatenate([[0.0], running_max_abs(np.diff(c.close))])
    with np.errstate(invalid="ignore"):
        clear = (
            ~np.isnan(value)
            & (np.abs(value - lower) > TAU_RSI)
            & (np.abs(value - exit_) > TAU_RSI)
            & (np.abs(value - upper) > TAU_RSI)
            & (gain + loss >= 1e-4 * largest_move)
        )
        long_resets = (value < lower) | (value >= exit_)
        short_resets = (value > upper) | (value <= exit_)
    excused = hold_excuse(long_resets, short_resets, clear, STATE_MEMORY * period)
    required = check_windows(strategy, c, draw_bars(data, n, h), excused)
    assert required > 0 or s["flat"]


@SETTINGS
@given(data=st.data(), s=series)
def test_bollinger_reversion_live_window(data: st.DataObject, s: dict[str, Any]) -> None:
    window = data.draw(st.integers(2, 30))
    k = data.draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))
    strategy = get_strategy("bollinger_reversion")({"window": window, "k": k})
    h = strategy.history_bars()
    n = h + s["extra"] + 1
    c = random_series(s["seed"], n, s["vol"], s["scale"], s["flat"])
    ind = strategy.indicators(c)
    close = c.close
    bars = np.arange(n) + 3.0
    biggest = running_max_abs(close)
    spread = np.maximum.accumulate(close) - np.minimum.accumulate(close)
    # Twice (two computations) the documented bound on one computation's band error.
    tol = 2 * (U * bars * biggest + 2 * k * np.sqrt(U * bars) * spread)
    with np.errstate(invalid="ignore"):
        clear = (
            ~np.isnan(ind["bb_middle"])
            & (np.abs(close - ind["bb_lower"]) > tol)
            & (np.abs(close - ind["bb_middle"]) > tol)
            & (np.abs(close - ind["bb_upper"]) > tol)
        )
        long_resets = (close < ind["bb_lower"]) | (close >= ind["bb_middle"])
        short_resets = (close > ind["bb_upper"]) | (close <= ind["bb_middle"])
    excused = hold_excuse(long_resets, short_resets, clear, STATE_MEMORY * window + 1)
    check_windows(strategy, c, draw_bars(data, n, h), excused)


@SETTINGS
@given(data=st.data(), s=series)
def test_donchian_breakout_live_window(data: st.DataObject, s: dict[str, Any]) -> None:
    entry = data.draw(st.integers(1, 25))
    exit_ = data.draw(st.integers(1, entry))
    strategy = get_strategy("donchian_breakout")({"entry": entry, "exit": exit_})
    h = strategy.history_bars()
    n = h + s["extra"] + 1
    c = random_series(s["seed"], n, s["vol"], s["scale"], s["flat"])
    ind = strategy.indicators(c)
    close = c.close
    with np.errstate(invalid="ignore"):
        long_resets = (close > ind["entry_high"]) | (close < ind["exit_low"])
        short_resets = (close < ind["entry_low"]) | (close > ind["exit_high"])
    # Maxima, minima and comparisons are exact: only a state no bar reset is excused.
    everything_clear = np.ones(n, dtype=np.bool_)
    excused = hold_excuse(long_resets, short_resets, everything_clear, STATE_MEMORY * entry + 1)
    check_windows(strategy, c, draw_bars(data, n, h), excused)


@SETTINGS
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    days=st.integers(5, 9),
    gaps=st.sampled_from([0.0, 0.05]),
)
def test_opening_range_breakout_live_window(
    intraday_candles: Callable[..., CandleArrays],
    data: st.DataObject,
    seed: int,
    days: int,
    gaps: float,
) -> None:
    range_minutes = data.draw(st.sampled_from([5, 15, 30, 60]))
    before_close = data.draw(st.sampled_from([0, 5, 30]))
    params = {"range_minutes": range_minutes, "exit_minutes_before_close": before_close}
    strategy = get_strategy("opening_range_breakout")(params)
    c = intraday_candles(seed, days, gap_prob=gaps, timeframe=Timeframe.M5)
    h = strategy.history_bars(Timeframe.M5)
    assert h == 25 * 12 + 1
    n = len(c)
    # Exact arithmetic and a state that resets every day: nothing is excused.
    required = check_windows(strategy, c, draw_bars(data, n, min(h, n)), lambda t: False)
    assert required >= 3


def test_history_bars_grows_with_the_parameters_and_follows_the_proofs() -> None:
    # The formulas of docs/strategies.md, computed here from the definitions.
    def decay(factor: float, residual: float) -> int:
        k = 0
        while factor**k > residual:
            k += 1
        return k

    def ema_k(span: int, residual: float) -> int:
        return decay(1 - 2 / (span + 1), residual)

    sma = get_strategy("sma_cross")
    assert sma({"slow": 50, "mode": "regime"}).history_bars() == 50
    assert sma({"slow": 50}).history_bars() == 100
    ema = get_strategy("ema_cross")({"fast": 12, "slow": 26, "mode": "regime"})
    assert ema.history_bars() == 25 + ema_k(26, 0.5e-10) + 1
    macd = get_strategy("macd")({"mode": "regime"})
    assert macd.history_bars() == 25 + ema_k(9, 1e-10 / 8) + max(8, ema_k(26, 1e-10 / 8)) + 1
    rsi = get_strategy("rsi_reversion")()
    assert rsi.history_bars() == 14 + decay(13 / 14, 1e-12) + 50 * 14
    assert get_strategy("bollinger_reversion")().history_bars() == 20 + 50 * 20
    assert get_strategy("donchian_breakout")().history_bars() == 20 + 1 + 50 * 20
    orb = get_strategy("opening_range_breakout")()
    assert orb.history_bars(Timeframe.M1) == 1501 == orb.history_bars(None)
    assert orb.history_bars(Timeframe.H1) == 26
    # Bigger spans need more history, never less.
    assert get_strategy("ema_cross")({"slow": 200}).history_bars() > ema.history_bars()
    assert math.isfinite(get_strategy("macd")({"slow": 5000, "signal": 1000}).history_bars())


def test_a_too_short_window_is_caught_by_the_check() -> None:
    # The check above can fail: an EMA window shorter than history_bars disagrees with the
    # whole series on a clear comparison, which is not excused.
    strategy = get_strategy("ema_cross")({"fast": 3, "slow": 30, "mode": "regime"})
    c = random_series(7, 3000, 0.01, 50.0, False)
    ind = strategy.indicators(c)
    excused = crossover_margin_excuse(ind["ema_fast"] - ind["ema_slow"], c.close)

    class Short(type(strategy)):  # type: ignore[misc]
        def history_bars(self, timeframe: Timeframe | None = None) -> int:
            return 31

    short = Short(strategy.params)
    with pytest.raises(AssertionError, match="window of 31 bars"):
        check_windows(short, c, list(range(100, 3000)), excused)


def test_target_at_last_bar_accepts_names_classes_and_instances() -> None:
    c = random_series(3, 400, 0.01, 50.0, False)
    s = get_strategy("sma_cross")({"fast": 5, "slow": 20})
    expected = int(s.checked_signals(c)[-1])
    assert target_at_last_bar("sma_cross", {"fast": 5, "slow": 20}, c) == expected
    assert target_at_last_bar(get_strategy("sma_cross"), {"fast": 5, "slow": 20}, c) == expected
    assert target_at_last_bar(s, None, c) == expected
    # Still in the warm-up (the window is the whole history): flat, as in a backtest.
    assert target_at_last_bar(s, None, c.slice(0, 19)) == 0
    from traderunner.errors import ParameterError

    with pytest.raises(ParameterError, match="pass params=None"):
        target_at_last_bar(s, {"fast": 5}, c)
    with pytest.raises(ParameterError, match="has no bars; pass the last 40 bars"):
        target_at_last_bar(s, None, c.slice(0, 0))
