"""Several symbols: cash split, curve = sum of the symbol curves on the union of timestamps."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.engine import run_backtest

PARAMS = {"fast": 5, "slow": 20}


def _pair(make_walk: Any) -> tuple[CandleArrays, CandleArrays]:
    a = make_walk(600, seed=1, symbol="AAA")
    b = make_walk(500, seed=2, symbol="BBB")
    # BBB starts 150 bars later and has a hole of 40 bars: the union has timestamps where
    # only one of them trades.
    later = dataclasses.replace(b, ts=b.ts + 150 * 300 * 10**9)
    keep = np.r_[0:200, 240:500]
    holed = CandleArrays(
        ts=later.ts[keep],
        open=later.open[keep],
        high=later.high[keep],
        low=later.low[keep],
        close=later.close[keep],
        volume=later.volume[keep],
        symbol="BBB",
        source="synthetic",
    )
    return a, holed


def test_each_symbol_runs_on_its_share_of_the_cash(make_walk: Any) -> None:
    a, b = _pair(make_walk)
    both = run_backtest("sma_cross", {"AAA": a, "BBB": b}, PARAMS, cash=10_000, direction="both")
    for sym, candles in (("AAA", a), ("BBB", b)):
        alone = run_backtest("sma_cross", candles, PARAMS, cash=5_000, direction="both")
        pd.testing.assert_series_equal(both.symbols[sym].equity, alone.equity, check_names=False)
        assert both.symbols[sym].metrics == pytest.approx(alone.metrics, nan_ok=True)
        assert both.symbols[sym].metrics["start_value"] == 5_000


def test_portfolio_curve_is_the_forward_filled_sum(make_walk: Any) -> None:
    a, b = _pair(make_walk)
    r = run_backtest("sma_cross", [a, b], PARAMS, cash=10_000)
    assert list(r.symbols) == ["AAA", "BBB"]
    # Independent computation with pandas: align, forward-fill, starting cash before the start.
    frame = pd.concat([r.symbols["AAA"].equity, r.symbols["BBB"].equity], axis=1).sort_index()
    expected = frame.ffill().fillna(5_000.0).sum(axis=1)
    np.testing.assert_allclose(r.equity.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert r.equity.index.equals(expected.index)
    assert isinstance(r.equity.index, pd.DatetimeIndex)
    assert str(r.equity.index.tz) == "UTC"
    assert r.metrics["start_value"] == 10_000
    assert r.metrics["end_value"] == pytest.approx(expected.iloc[-1])
    assert r.metrics["total_return"] == pytest.approx(expected.iloc[-1] / 10_000 - 1)


def test_portfolio_trades_are_all_trades_together(make_walk: Any) -> None:
    a, b = _pair(make_walk)
    r = run_backtest("sma_cross", {"AAA": a, "BBB": b}, PARAMS)
    n_a, n_b = r.symbols["AAA"].n_trades, r.symbols["BBB"].n_trades
    assert n_a > 0 and n_b > 0
    assert r.n_trades == n_a + n_b == r.metrics["trades"]
    assert set(r.trades["symbol"]) == {"AAA", "BBB"}
    assert r.trades["entry_time"].is_monotonic_increasing
    pnl = r.trades["pnl"].to_numpy()
    assert r.metrics["expectancy"] == pytest.approx(pnl.mean())
    assert r.metrics["win_rate"] == pytest.approx((pnl > 0).mean())
    # Portfolio PnL adds up: end value - start = sum of all trade PnL (open ones marked).
    assert r.metrics["end_value"] - 100_000 == pytest.approx(pnl.sum())


def test_same_timestamps_take_the_fast_path_and_agree(make_walk: Any) -> None:
    a = make_walk(400, seed=3, symbol="X")
    b = dataclasses.replace(make_walk(400, seed=4), symbol="Y")
    r = run_backtest("sma_cross", [a, b], PARAMS, cash=2_000)
    total = r.symbols["X"].equity.to_numpy() + r.symbols["Y"].equity.to_numpy()
    np.testing.assert_allclose(r.equity.to_numpy(), total)
    held = (r.symbols["X"].position != 0) | (r.symbols["Y"].position != 0)
    assert r.metrics["exposure"] == pytest.approx(held.mean())


def test_progress_and_cancel(make_walk: Any) -> None:
    from traderunner.errors import CancelledError

    data = {s: make_walk(100, seed=i, symbol=s) for i, s in enumerate(["A", "B", "C"])}
    seen: list[tuple[int, int, str]] = []
    run_backtest("sma_cross", data, PARAMS, progress=lambda d, t, s: seen.append((d, t, s)))
    assert seen == [(1, 3, "A"), (2, 3, "B"), (3, 3, "C")]
    calls = iter([False, True])
    with pytest.raises(CancelledError, match="cancelled before 'B'"):
        run_backtest("sma_cross", data, PARAMS, should_stop=lambda: next(calls))


def test_to_dict_is_json_safe(make_walk: Any) -> None:
    import json

    a, b = _pair(make_walk)
    r = run_backtest("sma_cross", {"AAA": a, "BBB": b}, PARAMS, stop_loss=0.01)
    d = r.to_dict(curve=True)
    text = json.dumps(d, allow_nan=False)  # NaN/inf would raise here
    back = json.loads(text)
    assert back["strategy"] == "sma_cross"
    assert back["params"] == {**PARAMS, "mode": "cross"}  # every parameter, defaults too
    assert back["options"]["stop_loss"] == 0.01
    assert back["symbols"] == ["AAA", "BBB"]
    assert back["sources"] == {"AAA": "synthetic", "BBB": "synthetic"}
    assert back["trades"] == r.n_trades == len(back["trade_list"])
    assert set(back["per_symbol"]) == {"AAA", "BBB"}
    assert back["per_symbol"]["BBB"]["trades"] == r.symbols["BBB"].n_trades
    assert len(back["equity"]) == len(r.equity)
    first = back["trade_list"][0]
    assert set(first) == set(r.trades.columns)
    assert pd.Timestamp(first["entry_time"]) == r.trades["entry_time"].iloc[0]
    assert pd.Timestamp(back["equity"][-1][0]) == r.equity.index[-1]
    assert back["equity"][-1][1] == pytest.approx(r.equity.iloc[-1])
    assert "equity" not in r.to_dict()
    # A metric that is undefined becomes None, not NaN.
    flat = run_backtest("sma_cross", a, {"fast": 5, "slow": 1000})
    flat_dict = flat.to_dict()
    assert flat.n_trades == 0
    assert flat_dict["metrics"]["sharpe"] is None
    assert math.isnan(flat.metrics["sharpe"])
