"""Parameter sweeps: many parameter combinations of one strategy on the same candles.

* :func:`parse_grid_values` and :func:`expand_grid` (pure, in
  :mod:`traderunner.strategies.grid`, so the job client checks grids the same way without
  the engine) read the grid syntax and check every name and value against the strategy's
  ``Params``, within the one sweep-size limit ``MAX_COMBINATIONS``.
* :func:`run_sweep` computes each indicator once per distinct value (inside
  ``indicator_cache`` for each symbol's candles), evaluates combinations on a thread pool (the
  kernel releases the GIL) and keeps only metrics: no trades DataFrame or equity Series is
  built per combination. Each row is the full, validated parameter set followed by the
  portfolio metrics of :data:`~traderunner.engine.metrics.METRIC_NAMES`, in combination order.
"""

from __future__ import annotations

import contextvars
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import pandas as pd

from traderunner.engine.backtest import CandleInput, Prepared, strategy_class, strategy_name
from traderunner.engine.kernel import KernelRun
from traderunner.engine.metrics import METRIC_NAMES
from traderunner.engine.options import BacktestOptions
from traderunner.engine.result import json_safe
from traderunner.errors import CancelledError, OptionError, ParameterError
from traderunner.strategies.base import Strategy
from traderunner.strategies.grid import expand_grid, parse_grid_values
from traderunner.strategies.indicators import indicator_cache

__all__ = ["SweepResult", "expand_grid", "parse_grid_values", "rank_rows", "run_sweep"]


@dataclass(frozen=True, slots=True, eq=False)
class SweepResult:
    """One row per combination: its parameters, then every metric."""

    strategy: str
    rows: list[dict[str, Any]]
    skipped: int
    elapsed_s: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def top(
        self, n: int = 10, by: str = "sharpe", *, ascending: bool = False, min_trades: int = 0
    ) -> pd.DataFrame:
        """The ``n`` best rows by ``by`` as a DataFrame (see :func:`rank_rows`)."""
        ranked = rank_rows(self.rows, by, ascending=ascending, min_trades=min_trades, n=n)
        return pd.DataFrame(ranked, columns=list(self.rows[0]) if self.rows else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (NaN and infinities as None)."""
        return {
            "strategy": self.strategy,
            "rows": [{k: json_safe(v) for k, v in row.items()} for row in self.rows],
            "skipped": self.skipped,
            "elapsed_s": self.elapsed_s,
        }


def rank_rows(
    rows: Sequence[Mapping[str, Any]],
    by: str,
    *,
    ascending: bool = False,
    min_trades: int = 0,
    n: int | None = None,
) -> list[dict[str, Any]]:
    """Sweep rows ranked by ``by`` (a metric or parameter), best first, at most ``n``.

    Descending unless ``ascending``. Finite values are ranked; rows whose value is infinite
    (a profit factor without a losing trade) come after them, then rows where it is NaN or
    missing, each group in combination order. Rows with fewer than ``min_trades`` trades are
    left out. An unknown ``by`` raises OptionError naming the known ones.
    """
    known = list(METRIC_NAMES) + [k for k in (rows[0] if rows else {}) if k not in METRIC_NAMES]
    if by not in known:
        raise OptionError(f"cannot rank by {by!r}: use one of {', '.join(known)}")
    if min_trades < 0:
        raise OptionError(f"min_trades must be >= 0, got {min_trades}")
    sign = 1.0 if ascending else -1.0

    def key(row: Mapping[str, Any]) -> tuple[int, float]:
        value = row.get(by)
        if value is None or isinstance(value, str):
            return (2, 0.0)
        number = float(value)
        if math.isnan(number):
            return (2, 0.0)
        if math.isinf(number):
            return (1, 0.0)
        return (0, sign * number)

    def enough(row: Mapping[str, Any]) -> bool:
        trades = row.get("trades")
        return min_trades <= 0 or (trades is not None and float(trades) >= min_trades)

    ranked = sorted((dict(r) for r in rows if enough(r)), key=key)
    return ranked if n is None else ranked[: max(int(n), 0)]


def _evaluate(
    cls: type[Strategy],
    combo: Mapping[str, Any],
    prepared: Prepared,
    contexts: Sequence[contextvars.Context],
    options: BacktestOptions,
) -> dict[str, Any]:
    strat = cls(combo)
    runs: list[KernelRun] = []
    for i, candles in enumerate(prepared.candles):
        # Each symbol's indicator memo lives in its own context; a copy per call lets threads
        # share the memo without entering one Context object twice.
        target = contexts[i].copy().run(strat.target_positions, candles)
        runs.append(prepared.run(i, target, options))
    _, metrics = prepared.portfolio_metrics(runs, options)
    row: dict[str, Any] = strat.params.to_dict()
    row.update(metrics)
    return row


def run_sweep(
    strategy: str | type[Strategy] | Strategy,
    candles: CandleInput,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    combos: Sequence[Mapping[str, Any]] | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> SweepResult:
    """Backtest every combination of ``grid`` (or the explicit ``combos``) on ``candles``.

    ``workers`` threads (default ``os.cpu_count()``); ``progress(done, total)`` after each
    combination; ``should_stop()`` is checked between combinations and raises CancelledError.
    Without a grid or combos the strategy's defaults are run once.
    """
    started = time.perf_counter()
    opts = BacktestOptions.from_kwargs(**options)
    cls = strategy_class(strategy)
    if grid is not None and combos is not None:
        raise ParameterError("give either a grid or explicit combos to run_sweep, not both")
    skipped = 0
    if combos is not None:
        todo = [dict(c) for c in combos]
        for c in todo:
            cls.make_params(c)
        if not todo:
            raise ParameterError("no parameter combinations to sweep: give at least one")
    elif grid is not None:
        todo, skipped = expand_grid(cls, grid)
    else:
        todo = [{}]
    if workers is not None and int(workers) < 1:
        raise OptionError(f"workers must be at least 1, got {workers}")
    n_workers = min(int(workers or os.cpu_count() or 1), len(todo))
    prepared = Prepared.build(candles, opts)
    contexts = []
    for arrays in prepared.candles:
        with indicator_cache(arrays):
            contexts.append(contextvars.copy_context())

    total = len(todo)
    rows: list[dict[str, Any] | None] = [None] * total

    def stop_requested(done: int) -> None:
        if should_stop is not None and should_stop():
            raise CancelledError(f"sweep cancelled after {done} of {total} combinations")

    if n_workers <= 1:
        for i, combo in enumerate(todo):
            stop_requested(i)
            rows[i] = _evaluate(cls, combo, prepared, contexts, opts)
            if progress is not None:
                progress(i + 1, total)
    else:
        stop_requested(0)
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="sweep") as pool:
            pending: dict[Future[dict[str, Any]], int] = {}
            it = iter(enumerate(todo))
            done = 0
            try:
                # Keep a bounded number in flight so a cancel stops quickly.
                for i, combo in itertools.islice(it, n_workers * 2):
                    pending[pool.submit(_evaluate, cls, combo, prepared, contexts, opts)] = i
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        rows[pending.pop(fut)] = fut.result()
                        done += 1
                        if progress is not None:
                            progress(done, total)
                    stop_requested(done)
                    for i, combo in itertools.islice(it, len(finished)):
                        pending[pool.submit(_evaluate, cls, combo, prepared, contexts, opts)] = i
            finally:
                for fut in pending:
                    fut.cancel()
    return SweepResult(
        strategy=strategy_name(cls),
        rows=[r for r in rows if r is not None],
        skipped=skipped,
        elapsed_s=time.perf_counter() - started,
    )
