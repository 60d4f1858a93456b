"""The Stepper (one bar at a time, the paper broker's path) equals the backtest kernel."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from tests.unit.engine.conftest import candles_from_rows, random_walk

from traderunner.engine import run_backtest
from traderunner.engine.step import Stepper
from traderunner.strategies import get_strategy

OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"fill": "close", "direction": "both"},
    {"direction": "both", "fees_bps": 10, "fee_per_order": 1.0, "slippage_bps": 5},
    {"direction": "short", "stop_loss": 0.01, "take_profit": 0.02},
    {"direction": "both", "trailing_stop": 0.005, "stop_loss": 0.01, "fill": "close"},
    {"direction": "both", "units": "whole", "lot_size": 10, "fees_bps": 3, "cash": 25_000},
]


def _drive(stepper: Stepper, candles: Any, target: np.ndarray, start: int, stop: int) -> list:
    out = []
    for i in range(start, stop):
        out.append(
            stepper.on_bar(
                int(candles.ts[i]),
                candles.open[i],
                candles.high[i],
                candles.low[i],
                candles.close[i],
                int(target[i]),
            )
        )
    return out


@pytest.mark.parametrize("options", OPTION_SETS)
def test_stepper_reproduces_the_backtest(options: dict[str, Any]) -> None:
    candles = random_walk(3000, seed=5)
    strat = get_strategy("sma_cross")({"fast": 8, "slow": 30})
    target = strat.target_positions(candles)
    result = run_backtest(strat, candles, **options)
    assert result.n_closed_trades > 10

    stepper = Stepper(result.options)
    # Halfway through, the state goes through JSON and a new Stepper continues from it.
    outcomes = _drive(stepper, candles, target, 0, 1500)
    stepper = Stepper.from_dict(json.loads(json.dumps(stepper.to_dict())))
    outcomes += _drive(stepper, candles, target, 1500, len(candles))

    np.testing.assert_array_equal([o.equity for o in outcomes], result.equity.to_numpy())
    fills = [f for o in outcomes for f in o.fills]
    assert len(fills) == len(result.fills)
    np.testing.assert_array_equal([f.time_ns for f in fills], result.fills["time"].astype("int64"))
    assert [f.side for f in fills] == list(result.fills["side"])
    assert [f.reason for f in fills] == list(result.fills["reason"])
    np.testing.assert_array_equal([f.units for f in fills], result.fills["size"])
    np.testing.assert_array_equal([f.price for f in fills], result.fills["price"])
    np.testing.assert_array_equal([f.fee for f in fills], result.fills["fee"])

    closed = result.closed_trades
    trades = [t for o in outcomes for t in o.trades]
    assert len(trades) == len(closed)
    np.testing.assert_array_equal([t.pnl for t in trades], closed["pnl"])
    np.testing.assert_array_equal(
        [t.entry_time_ns for t in trades], closed["entry_time"].astype("int64")
    )
    np.testing.assert_array_equal(
        [t.exit_time_ns for t in trades], closed["exit_time"].astype("int64")
    )
    assert [t.exit_reason for t in trades] == list(closed["exit_reason"])
    assert stepper.mark() == pytest.approx(result.metrics["end_value"], rel=1e-12)
    assert stepper.units == result.symbols["RW"].position[-1]
    assert stepper.fees_paid == pytest.approx(result.fills["fee"].sum(), rel=1e-12, abs=1e-12)
    assert stepper.fees_paid == pytest.approx(result.metrics["fees_paid"], rel=1e-12, abs=1e-12)
    assert stepper.slippage_paid == pytest.approx(result.metrics["slippage_paid"], rel=1e-12)
    if result.options.slippage_bps:
        # Each fill loses slippage_bps of its unslipped notional.
        raw = result.fills["price"] / (1 + np.where(result.fills["side"] == "buy", 1, -1) * 5e-4)
        lost = (result.fills["size"] * raw * 5e-4).sum()
        assert result.metrics["slippage_paid"] == pytest.approx(lost, rel=1e-9)


def test_whole_units_and_lots() -> None:
    # Close 100 then 101: 10,050 cash at size 1 buys floor(10050 / 101.5) = 99 units at the
    # next open (101.5); in lots of 10, 90.
    rows = [(100, 101, 99, 100), (101.5, 102, 101, 101), (101, 102, 100, 101)]
    c = candles_from_rows(rows)
    target = np.array([1, 1, 1])
    for lot, units in ((1, 99.0), (10, 90.0)):
        s = Stepper({"units": "whole", "lot_size": lot, "cash": 10_050})
        first = s.on_bar(int(c.ts[0]), 100, 101, 99, 100, int(target[0]))
        assert first.fills == () and s.pending
        second = s.on_bar(int(c.ts[1]), 101.5, 102, 101, 101, 1)
        assert [f.units for f in second.fills] == [units]
        assert second.fills[0].price == 101.5
        assert s.cash == pytest.approx(10_050 - units * 101.5)


def test_bad_bars_are_refused() -> None:
    s = Stepper()
    s.on_bar(2, 1.0, 1.0, 1.0, 1.0, 0)
    with pytest.raises(ValueError, match="not after the previous bar"):
        s.on_bar(2, 1.0, 1.0, 1.0, 1.0, 0)
    with pytest.raises(ValueError, match="finite and positive"):
        s.on_bar(3, float("nan"), 1.0, 1.0, 1.0, 0)
