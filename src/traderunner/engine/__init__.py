"""The backtest engine: candles and a strategy in, equity, trades and metrics out. No I/O.

* :func:`run_backtest` runs one parameter set over one or several symbols
  (:mod:`~traderunner.engine.backtest`), returning a :class:`BacktestResult`;
* :func:`run_sweep` runs many parameter combinations, keeping only metrics
  (:mod:`~traderunner.engine.sweep`); :func:`expand_grid` and :func:`parse_grid_values` build
  and check the combinations (they live in :mod:`traderunner.strategies.grid`);
* the fill rules, costs and stops are in :mod:`~traderunner.engine.kernel`, the metric
  definitions in :mod:`~traderunner.engine.metrics`, the options in
  :mod:`~traderunner.engine.options`.

The names below are loaded on first use, so ``traderunner.engine.options`` (pure: the option
names and their validation, which the job client uses) imports without numba or the kernels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from traderunner.engine.backtest import run_backtest
    from traderunner.engine.metrics import METRIC_NAMES
    from traderunner.engine.options import BacktestOptions, Direction, Fill
    from traderunner.engine.result import BacktestResult, SymbolResult
    from traderunner.engine.sweep import SweepResult, expand_grid, parse_grid_values, run_sweep

_WHERE = {
    "run_backtest": "traderunner.engine.backtest",
    "METRIC_NAMES": "traderunner.engine.metrics",
    "BacktestOptions": "traderunner.engine.options",
    "Direction": "traderunner.engine.options",
    "Fill": "traderunner.engine.options",
    "BacktestResult": "traderunner.engine.result",
    "SymbolResult": "traderunner.engine.result",
    "SweepResult": "traderunner.engine.sweep",
    "expand_grid": "traderunner.engine.sweep",
    "parse_grid_values": "traderunner.engine.sweep",
    "run_sweep": "traderunner.engine.sweep",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'traderunner.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "METRIC_NAMES",
    "BacktestOptions",
    "BacktestResult",
    "Direction",
    "Fill",
    "SweepResult",
    "SymbolResult",
    "expand_grid",
    "parse_grid_values",
    "run_backtest",
    "run_sweep",
]
