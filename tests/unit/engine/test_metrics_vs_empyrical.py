"""Our metric definitions agree with empyrical-reloaded's, plus hand-computed cases."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pytest

from traderunner.engine.metrics import (
    DAY_NS,
    METRIC_NAMES,
    compute_metrics,
    curve_metrics,
    periods_per_year,
    trade_metrics,
)

START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z, a Monday


def _curve(returns: np.ndarray, start: float) -> np.ndarray:
    return start * np.cumprod(1.0 + returns)


@pytest.mark.parametrize(
    ("seed", "n", "mu", "sigma", "ppy"),
    [
        (1, 252, 0.0005, 0.01, 252.0),
        (2, 1000, -0.0002, 0.02, 252.0),
        (3, 5000, 0.00001, 0.001, 19656.0),
        (4, 60, 0.002, 0.03, 365.0),
        (5, 3000, 0.0, 0.005, 98280.0),
    ],
)
def test_curve_metrics_match_empyrical(
    seed: int, n: int, mu: float, sigma: float, ppy: float
) -> None:
    rng = np.random.default_rng(seed)
    returns = rng.normal(mu, sigma, n)
    start = 10_000.0
    ts = START_NS + np.arange(n, dtype=np.int64) * 3600 * 10**9
    m = curve_metrics(_curve(returns, start), start, ts, ppy)
    expected = {
        "sharpe": empyrical.sharpe_ratio(returns, annualization=ppy),
        "sortino": empyrical.sortino_ratio(returns, annualization=ppy),
        "annual_volatility": empyrical.annual_volatility(returns, annualization=ppy),
        "max_drawdown": empyrical.max_drawdown(returns),
        "cagr": empyrical.cagr(returns, annualization=ppy),
        "calmar": empyrical.calmar_ratio(returns, annualization=ppy),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=1e-8, abs=1e-12), name
    assert m["total_return"] == pytest.approx(np.prod(1 + returns) - 1, rel=1e-10)


def test_first_return_is_relative_to_the_starting_cash() -> None:
    # A loss on the very first bar is a drawdown from the starting cash.
    m = curve_metrics(np.array([90.0, 99.0]), 100.0, START_NS + np.arange(2) * DAY_NS, 252.0)
    assert m["max_drawdown"] == pytest.approx(-0.10)
    assert m["max_drawdown_duration_bars"] == 2.0  # start -> end, never recovered
    empyrical_dd = empyrical.max_drawdown(np.array([-0.1, 0.1]))
    assert m["max_drawdown"] == pytest.approx(empyrical_dd)


def test_drawdown_duration_by_hand() -> None:
    # Curve (start 100): 110 120 108 96 100 125 110 (bars 0..6, one day apart).
    # Peak 120 at bar 1, trough 96 at bar 3 (-20%), first back at >= 120 on bar 5:
    # duration 5 - 1 = 4 bars = 4 days. The later dip to 110 is only -12%.
    eq = np.array([110.0, 120.0, 108.0, 96.0, 100.0, 125.0, 110.0])
    m = curve_metrics(eq, 100.0, START_NS + np.arange(7) * DAY_NS, 252.0)
    assert m["max_drawdown"] == pytest.approx(-0.20)
    assert m["max_drawdown_duration_bars"] == 4.0
    assert m["max_drawdown_duration_days"] == pytest.approx(4.0)
    assert m["total_return"] == pytest.approx(0.10)
    assert m["cagr"] == pytest.approx(1.1 ** (252 / 7) - 1)
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.20)


def test_unrecovered_drawdown_runs_to_the_end() -> None:
    # Peak 120 at bar 1, never regained: duration from bar 1 to the last bar (4) = 3 bars.
    eq = np.array([110.0, 120.0, 100.0, 90.0, 95.0])
    m = curve_metrics(eq, 100.0, START_NS + np.arange(5) * DAY_NS, 252.0)
    assert m["max_drawdown"] == pytest.approx(90 / 120 - 1)
    assert m["max_drawdown_duration_bars"] == 3.0
    assert m["max_drawdown_duration_days"] == pytest.approx(3.0)


def test_flat_curve_has_undefined_ratios() -> None:
    m = curve_metrics(np.full(10, 100.0), 100.0, START_NS + np.arange(10) * DAY_NS, 252.0)
    assert m["total_return"] == 0.0
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0.0
    for name in ("sharpe", "sortino", "calmar"):
        assert math.isnan(m[name]), name


def test_trade_metrics_by_hand() -> None:
    # pnl 10, -5, 20, -5: wins 2/4; profit factor 30/10 = 3; expectancy 5;
    # std (ddof 1) = sqrt((25 + 100 + 225 + 100) / 3) = sqrt(150); sqn = 2 * 5 / sqrt(150).
    pnl = np.array([10.0, -5.0, 20.0, -5.0])
    m = trade_metrics(pnl, pnl / 100, np.array([1, 2, 3, 6]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(3.0)
    assert m["expectancy"] == pytest.approx(5.0)
    assert m["sqn"] == pytest.approx(10 / math.sqrt(150))
    assert m["trades"] == 4.0
    assert m["avg_trade_bars"] == 3.0
    assert m["avg_trade_duration_days"] == 3.0
    assert (m["best_trade"], m["worst_trade"]) == (0.2, -0.05)


def test_no_trades_are_nan_and_no_losses_are_infinite_profit_factor() -> None:
    empty = np.array([], dtype=np.float64)
    m = trade_metrics(empty, empty, np.array([], dtype=np.int64), empty)
    counts: tuple[str, ...] = ("trades", "closed_trades", "open_trades", "max_consecutive_wins")
    counts += ("max_consecutive_losses",)
    assert all(m[k] == 0.0 for k in counts)
    assert all(math.isnan(v) for k, v in m.items() if k not in counts)
    winners = np.array([1.0, 2.0])
    m = trade_metrics(winners, winners, np.array([1, 1]), winners)
    assert m["profit_factor"] == math.inf


def test_compute_metrics_has_every_name_in_order() -> None:
    ts = START_NS + np.arange(3) * DAY_NS
    pnl = np.array([5.0])
    m = compute_metrics(
        np.array([100.0, 105.0, 105.0]), 100.0, ts, 1 / 3, pnl, pnl / 100, np.array([1]), pnl
    )
    assert tuple(m) == METRIC_NAMES
    assert m["exposure"] == pytest.approx(1 / 3)


def test_periods_per_year_long_span_counts_existing_bars() -> None:
    # 200 daily bars spread over 280 calendar days (weekdays only):
    # ppy = 200 / (span_days / 365.25).
    days = np.arange(280)
    weekdays = days[(days % 7) < 5][:200]  # 2024-01-01 is a Monday
    ts = START_NS + weekdays.astype(np.int64) * DAY_NS
    span = weekdays[-1] - weekdays[0]
    assert periods_per_year(ts) == pytest.approx(200 / (span / 365.25))


def test_periods_per_year_short_span_uses_bars_per_day() -> None:
    # 10 weekdays of 78 five-minute bars (a US session): 78 * 252.
    five = 300 * 10**9
    session = np.arange(78, dtype=np.int64) * five + (14 * 3600 + 1800) * 10**9
    ts = np.concatenate([START_NS + d * DAY_NS + session for d in range(12) if d % 7 < 5])
    assert periods_per_year(ts) == pytest.approx(78 * 252)
    # Around the clock, weekends included: 288 five-minute bars a day times 365.
    ts = START_NS + np.arange(288 * 20, dtype=np.int64) * five
    assert periods_per_year(ts) == pytest.approx(288 * 365)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_beta_alpha_and_buy_and_hold_match_empyrical(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 800
    market = rng.normal(0.0003, 0.01, n)
    strategy = 0.6 * market + rng.normal(0.0, 0.004, n)
    start = 1000.0
    ts = START_NS + np.arange(n, dtype=np.int64) * DAY_NS
    closes = 50.0 * np.cumprod(1.0 + market)
    bench = np.asarray(closes, dtype=np.float64)  # worth 50 before bar 0
    m = curve_metrics(_curve(strategy, start), start, ts, 252.0, bench, 50.0)
    assert m["beta"] == pytest.approx(empyrical.beta(strategy, market), rel=1e-9)
    assert m["buy_hold_return"] == pytest.approx(np.prod(1.0 + market) - 1.0, rel=1e-10)
    assert m["alpha"] == pytest.approx(
        m["total_return"] - m["beta"] * m["buy_hold_return"], rel=1e-12
    )


def test_average_drawdown_and_peak_by_hand() -> None:
    # Start 100: 110 120 108 96 100 125 110 -> two drawdown periods below a peak: 120 -> 96
    # (-20%) and 125 -> 110 (-12%), so the average is -16%; the peak is 125.
    eq = np.array([110.0, 120.0, 108.0, 96.0, 100.0, 125.0, 110.0])
    m = curve_metrics(eq, 100.0, START_NS + np.arange(7) * DAY_NS, 252.0)
    assert m["avg_drawdown"] == pytest.approx(-0.16)
    assert m["equity_peak"] == 125.0
    flat = curve_metrics(np.array([100.0, 101.0]), 100.0, START_NS + np.arange(2) * DAY_NS, 252.0)
    assert flat["avg_drawdown"] == 0.0


def test_streaks_follow_the_closing_order() -> None:
    pnl = np.array([1.0, 2.0, -1.0, 3.0, 4.0, 5.0, -2.0, -3.0])
    z = np.zeros(len(pnl))
    bars = np.zeros(len(pnl), dtype=np.int64)
    m = trade_metrics(pnl, z, bars, z)
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (3.0, 2.0)
    # Closed in another order (a portfolio's trades by exit time): -1, -2, -3 in a row.
    order = np.array([0, 2, 6, 7, 1, 3, 4, 5])
    m = trade_metrics(pnl, z, bars, z, exit_order=order)
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (4.0, 3.0)
    is_open = np.zeros(len(pnl), dtype=np.bool_)
    is_open[-1] = True
    m = trade_metrics(pnl, z, bars, z, is_open=is_open)
    assert (m["closed_trades"], m["open_trades"], m["trades"]) == (7.0, 1.0, 8.0)
