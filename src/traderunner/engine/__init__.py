"""The backtest engine: candles and a strategy in, equity, trades and metrics out. No I/O.

* :func:`run_backtest` runs one parameter set over one or several symbols
  (:mod:`~traderunner.engine.backtest`), returning a :class:`BacktestResult`;
* :func:`run_sweep` runs many parameter combinations, keeping only metrics
  (:mod:`~traderunner.engine.sweep`); :func:`expand_grid` and :func:`parse_grid_values` build
  and check the combinations;
* the fill rules, costs and stops are in :mod:`~traderunner.engine.kernel`, the metric
  definitions in :mod:`~traderunner.engine.metrics`, the options in
  :mod:`~traderunner.engine.options`.
"""

from traderunner.engine.backtest import run_backtest
from traderunner.engine.metrics import METRIC_NAMES
from traderunner.engine.options import BacktestOptions, Direction, Fill
from traderunner.engine.result import BacktestResult, SymbolResult
from traderunner.engine.sweep import SweepResult, expand_grid, parse_grid_values, run_sweep

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
