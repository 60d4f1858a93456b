"""backtesting.py's published GOOG example from the CLI, on the file inside the package."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import backtesting
import pandas as pd
from tests.unit.engine.test_engine_vs_peers import GOOG_CSV, BtSmaCross, check_goog_figures

if TYPE_CHECKING:
    from conftest import Cli


def test_goog_example_from_the_cli(empty_cli: Cli) -> None:
    ran = empty_cli(
        "backtest",
        "sma_cross",
        "--data",
        str(GOOG_CSV),
        "-p",
        "fast=10",
        "-p",
        "slow=30",
        "--direction",
        "both",
        "--cash",
        "10000",
        "--units",
        "whole",
        "--no-save",
        "--json",
    )
    assert ran.code == 0, ran.err
    doc = ran.json()
    assert doc["timeframe"] == "D1"
    assert (doc["trades"], doc["closed_trades"], doc["open_trades"]) == (66, 65, 1)
    assert doc["options"]["units"] == "whole"
    assert len(doc["fill_list"]) == 131
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        goog = pd.read_csv(GOOG_CSV, index_col=0, parse_dates=True)
        theirs = backtesting.Backtest(goog, BtSmaCross, cash=10_000, commission=0.0).run()
    check_goog_figures(doc["metrics"], doc["closed_trades"], theirs)


def test_units_and_lot_size_are_checked_before_any_data(empty_cli: Cli) -> None:
    for args, message in (
        (("--units", "half"), "units must be one of fractional, whole"),
        (("--lot-size", "10"), "lot_size needs units=whole"),
        (("--units", "whole", "--lot-size", "2.5"), "lot_size must be a whole number >= 1"),
    ):
        ran = empty_cli("backtest", "sma_cross", "--data", str(GOOG_CSV), "--no-save", *args)
        assert ran.code != 0
        assert message in ran.err
        assert len(ran.err_lines) == 1, ran.err


def test_sweep_ranks_with_min_trades_and_ascending(empty_cli: Cli) -> None:
    base = ("sweep", "sma_cross", "--data", str(GOOG_CSV), "--no-save", "--json")
    grid = (
        "--grid",
        "fast=2:20:2",
        "--grid",
        "slow=3:90:9",
        "--units",
        "whole",
        "--to",
        "2005-06-30",
    )
    ran = empty_cli(*base, *grid, "--sort", "profit_factor", "--top", "500")
    assert ran.code == 0, ran.err
    rows = ran.json()["rows"]
    values = [r["profit_factor"] for r in rows]
    # JSON has no infinity: infinite and NaN values are null and rank after every number.
    numbers = [v for v in values if v is not None]
    assert values[: len(numbers)] == numbers == sorted(numbers, reverse=True)
    few = [r for r in rows if r["trades"] < 5]
    assert few, "the grid should hold combinations with very few trades"
    ran = empty_cli(*base, *grid, "--sort", "profit_factor", "--min-trades", "5", "--top", "500")
    doc = ran.json()
    assert doc["min_trades"] == 5
    assert all(r["trades"] >= 5 for r in doc["rows"])
    assert len(doc["rows"]) == len(rows) - len(few)
    ran = empty_cli(*base, *grid, "--sort", "max_drawdown", "--ascending", "--top", "3")
    worst = [r["max_drawdown"] for r in ran.json()["rows"]]
    assert worst == sorted(worst) and len(worst) == 3
