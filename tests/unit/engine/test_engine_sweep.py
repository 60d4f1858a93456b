"""Sweeps: grid syntax, grid validation, the lean path agreeing with run_backtest, threads."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from traderunner.domain.candles import CandleArrays
from traderunner.engine import (
    METRIC_NAMES,
    SweepResult,
    expand_grid,
    parse_grid_values,
    run_backtest,
    run_sweep,
)
from traderunner.engine.sweep import rank_rows
from traderunner.errors import CancelledError, OptionError, ParameterError
from traderunner.strategies.base import (
    Indicators,
    SignalArray,
    Strategy,
    StrategyParams,
    param,
)
from traderunner.strategies.indicators import memoized, sma

CALLS: collections.Counter[int] = collections.Counter()


@memoized
def counted_sma(values: np.ndarray, window: int) -> np.ndarray:
    CALLS[window] += 1
    return sma(np.asarray(values, dtype=np.float64).copy(), window)


@dataclasses.dataclass(frozen=True, slots=True)
class CountingParams(StrategyParams):
    fast: int = param(3, low=1, high=100)
    slow: int = param(8, low=2, high=200)

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(f"fast must be < slow, got {self.fast} >= {self.slow}")


class CountingCross(Strategy):
    """SMA cross whose moving average counts how often it is really computed."""

    name = "counting_cross"
    Params = CountingParams
    params: CountingParams

    @property
    def warmup_bars(self) -> int:
        return self.params.slow - 1

    def indicators(self, candles: CandleArrays) -> Indicators:
        return {
            "fast": counted_sma(candles.close, self.params.fast),
            "slow": counted_sma(candles.close, self.params.slow),
        }

    def signals(self, candles: CandleArrays, indicators: Indicators) -> SignalArray:
        diff = np.nan_to_num(indicators["fast"] - indicators["slow"])
        return np.sign(diff).astype(np.int8)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5:50:5", [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),
        ("0.5:2:0.5", [0.5, 1.0, 1.5, 2.0]),
        ("0.1:0.3:0.1", [0.1, 0.2, 0.3]),
        ("1:4", [1, 2, 3, 4]),
        ("5:12:5", [5, 10]),
        ("5,10,20", [5, 10, 20]),
        (" 7 ", [7]),
        ("0.02", [0.02]),
        ("-1:1:1", [-1, 0, 1]),
        ("ema,sma", ["ema", "sma"]),
    ],
)
def test_parse_grid_values(spec: str, expected: list[Any]) -> None:
    values = parse_grid_values(spec)
    assert values == expected
    assert [type(v) for v in values] == [type(v) for v in expected]


@pytest.mark.parametrize("spec", ["", "  ", "5:1:1", "1:5:0", "1:x:2", "1::2", "1,,2", "1:2:3:4"])
def test_bad_grid_text_is_a_parameter_error(spec: str) -> None:
    with pytest.raises(ParameterError):
        parse_grid_values(spec)


def test_expand_grid_counts_the_skipped_combinations() -> None:
    # fast 5..50 x slow 20..200: slow 20 keeps fast 5, 10, 15 (3), slow 40 keeps 5..35 (7),
    # the other 8 slows keep all 10 -> 90 valid of 100, 10 skipped.
    combos, skipped = expand_grid("sma_cross", {"fast": range(5, 55, 5), "slow": "20:200:20"})
    assert (len(combos), skipped) == (90, 10)
    assert combos[0] == {"fast": 5, "slow": 20}
    assert all(c["fast"] < c["slow"] for c in combos)
    assert all(isinstance(c["slow"], int) for c in combos)


def test_expand_grid_rejects_user_errors() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter.*speed"):
        expand_grid("sma_cross", {"speed": [1]})
    with pytest.raises(ParameterError, match="fast=0 is outside its bounds"):
        expand_grid("sma_cross", {"fast": [0, 5], "slow": [20]})
    with pytest.raises(ParameterError, match="all 1 grid combinations are invalid"):
        expand_grid("sma_cross", {"fast": [50], "slow": [20]})
    with pytest.raises(ParameterError, match="no values"):
        expand_grid("sma_cross", {"fast": []})
    with pytest.raises(ParameterError, match="must be int"):
        expand_grid("sma_cross", {"fast": [2.5]})


def _two_symbols(make_walk: Any) -> dict[str, CandleArrays]:
    a = make_walk(800, seed=5, symbol="A")
    b = make_walk(700, seed=6, symbol="B")
    return {"A": a, "B": dataclasses.replace(b, ts=b.ts + 50 * 300 * 10**9)}


def _same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12, abs=1e-12)


def test_sweep_rows_equal_full_backtests(make_walk: Any) -> None:
    data = _two_symbols(make_walk)
    options: dict[str, Any] = {"direction": "both", "stop_loss": 0.01, "fees_bps": 2.0}
    grid = {"fast": [3, 8], "slow": [10, 30]}
    result = run_sweep("sma_cross", data, grid, workers=2, **options)
    assert result.strategy == "sma_cross"
    assert len(result.rows) == 4 and result.skipped == 0
    for row in result.rows:
        full = run_backtest(
            "sma_cross", data, {"fast": row["fast"], "slow": row["slow"]}, **options
        )
        assert list(row) == ["fast", "slow", "mode", *METRIC_NAMES]  # defaults too
        for name in METRIC_NAMES:
            assert _same(row[name], full.metrics[name]), name


def test_threads_give_the_same_rows_in_combination_order(make_walk: Any) -> None:
    data = make_walk(3000, seed=9)
    grid = {"fast": "2:20:3", "slow": "10:60:10"}
    one = run_sweep("sma_cross", data, grid, workers=1)
    two = run_sweep("sma_cross", data, grid, workers=2)
    combos, _ = expand_grid("sma_cross", grid)
    assert [(r["fast"], r["slow"]) for r in two.rows] == [(c["fast"], c["slow"]) for c in combos]
    assert one.to_frame().equals(two.to_frame())


def test_each_indicator_is_computed_once_per_value(make_walk: Any) -> None:
    data = {"A": make_walk(500, seed=1, symbol="A"), "B": make_walk(500, seed=2, symbol="B")}
    CALLS.clear()
    result = run_sweep(CountingCross, data, {"fast": [2, 3, 4], "slow": [5, 6, 7]}, workers=1)
    assert len(result.rows) == 9
    # 6 distinct windows, once per symbol.
    assert dict(CALLS) == dict.fromkeys((2, 3, 4, 5, 6, 7), 2)
    CALLS.clear()
    run_backtest(CountingCross, data["A"], {"fast": 2, "slow": 5})
    run_backtest(CountingCross, data["A"], {"fast": 2, "slow": 5})
    assert dict(CALLS) == {2: 2, 5: 2}  # outside a sweep nothing is cached


def test_top_ranks_descending_with_nan_last() -> None:
    rows = [
        {"fast": 1, "sharpe": 0.5, "max_drawdown": -0.3},
        {"fast": 2, "sharpe": math.nan, "max_drawdown": -0.1},
        {"fast": 3, "sharpe": 1.5, "max_drawdown": -0.2},
        {"fast": 4, "sharpe": -1.0, "max_drawdown": -0.5},
    ]
    result = SweepResult(strategy="x", rows=rows, skipped=0, elapsed_s=0.0)
    top = result.top()
    assert isinstance(top, pd.DataFrame)
    assert list(top.columns) == ["fast", "sharpe", "max_drawdown"]
    assert list(top["fast"]) == [3, 1, 4, 2]
    assert list(result.top(2, by="max_drawdown")["fast"]) == [2, 3]
    assert list(result.top(1, by="fast")["fast"]) == [4]
    assert list(result.top(by="sharpe", ascending=True)["fast"]) == [4, 1, 3, 2]
    with pytest.raises(OptionError, match="cannot rank by 'sharp'"):
        result.top(by="sharp")
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["rows"][1]["sharpe"] is None


def test_infinities_rank_after_finite_values_and_min_trades_filters() -> None:
    inf = math.inf
    rows = [
        {"fast": 1, "profit_factor": inf, "trades": 1.0},
        {"fast": 2, "profit_factor": 1.4, "trades": 30.0},
        {"fast": 3, "profit_factor": None, "trades": 0.0},
        {"fast": 4, "profit_factor": 2.1, "trades": 12.0},
        {"fast": 5, "profit_factor": -inf, "trades": 3.0},
        {"fast": 6, "profit_factor": 0.7, "trades": 40.0},
    ]
    assert [r["fast"] for r in rank_rows(rows, "profit_factor")] == [4, 2, 6, 1, 5, 3]
    assert [r["fast"] for r in rank_rows(rows, "profit_factor", ascending=True)] == [
        6,
        2,
        4,
        1,
        5,
        3,
    ]
    kept = rank_rows(rows, "profit_factor", min_trades=12)
    assert [r["fast"] for r in kept] == [4, 2, 6]
    result = SweepResult(strategy="x", rows=rows, skipped=0, elapsed_s=0.0)
    assert list(result.top(2, by="profit_factor", min_trades=20)["fast"]) == [2, 6]
    assert result.top(by="profit_factor", min_trades=1000).empty
    with pytest.raises(OptionError, match="min_trades must be >= 0"):
        rank_rows(rows, "trades", min_trades=-1)


def test_progress_cancel_and_explicit_combos(make_walk: Any) -> None:
    data = make_walk(400, seed=3)
    seen: list[tuple[int, int]] = []
    combos = [{"fast": 2, "slow": 9}, {"fast": 4, "slow": 12}, {"fast": 6, "slow": 15}]
    result = run_sweep(
        "sma_cross", data, combos=combos, workers=2, progress=lambda d, t: seen.append((d, t))
    )
    assert [(r["fast"], r["slow"]) for r in result.rows] == [(2, 9), (4, 12), (6, 15)]
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    for workers in (1, 2):
        with pytest.raises(CancelledError, match="sweep cancelled"):
            run_sweep(
                "sma_cross", data, combos=combos * 5, workers=workers, should_stop=lambda: True
            )
    with pytest.raises(ParameterError, match="not both"):
        run_sweep("sma_cross", data, {"fast": [2]}, combos=combos)
    with pytest.raises(ParameterError):
        run_sweep("sma_cross", data, combos=[{"fast": 9, "slow": 3}])
    with pytest.raises(OptionError, match="workers"):
        run_sweep("sma_cross", data, combos=combos, workers=0)
    with pytest.raises(OptionError, match="size"):
        run_sweep("sma_cross", data, combos=combos, size=2)
