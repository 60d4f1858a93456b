"""Parameter sweeps: many parameter combinations of one strategy on the same candles.

* :func:`parse_grid_values` reads the CLI/dashboard grid syntax: ``"5:50:5"`` is an
  inclusive range (ints when start, stop and step are all ints, floats otherwise, e.g.
  ``"0.5:2:0.5"``; ``"a:b"`` steps by 1), ``"5,10,20"`` a list, ``"7"`` one value.
* :func:`expand_grid` checks every name and value against the strategy's ``Params``: an
  unknown name or a value out of bounds raises ParameterError (a user error), while a
  combination rejected by the Params' cross-field ``check()`` (say ``fast >= slow``) is skipped
  and counted. A grid with nothing left raises ParameterError, as does one above
  :data:`MAX_COMBOS` combinations.
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
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from traderunner.engine.backtest import CandleInput, Prepared, strategy_class, strategy_name
from traderunner.engine.kernel import KernelRun
from traderunner.engine.metrics import METRIC_NAMES
from traderunner.engine.options import BacktestOptions
from traderunner.engine.result import json_safe
from traderunner.errors import CancelledError, OptionError, ParameterError
from traderunner.strategies.base import ParamSpec, Strategy
from traderunner.strategies.indicators import indicator_cache

#: Largest grid a sweep accepts; bigger ones are almost always a typo in a range.
MAX_COMBOS = 1_000_000
_MAX_RANGE_VALUES = 100_000
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True, slots=True, eq=False)
class SweepResult:
    """One row per combination: its parameters, then every metric."""

    strategy: str
    rows: list[dict[str, Any]]
    skipped: int
    elapsed_s: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def top(self, n: int = 10, by: str = "sharpe") -> list[dict[str, Any]]:
        """The ``n`` best rows by ``by`` (a metric or parameter), descending, NaN last."""
        known = list(METRIC_NAMES) + [
            k for k in (self.rows[0] if self.rows else {}) if k not in METRIC_NAMES
        ]
        if by not in known:
            raise OptionError(f"cannot rank by {by!r}: use one of {', '.join(known)}")

        def key(row: dict[str, Any]) -> tuple[int, float]:
            value = row.get(by)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return (1, 0.0)
            return (0, -float(value))

        return sorted(self.rows, key=key)[: max(int(n), 0)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (NaN and infinities as None)."""
        return {
            "strategy": self.strategy,
            "rows": [{k: json_safe(v) for k, v in row.items()} for row in self.rows],
            "skipped": self.skipped,
            "elapsed_s": self.elapsed_s,
        }


def _number(text: str, spec: str) -> int | float:
    if _INT.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(
            f"grid range {spec!r} has {text!r} where a number belongs: write start:stop:step, "
            "e.g. 5:50:5"
        ) from None
    if not math.isfinite(value):
        raise ParameterError(f"grid range {spec!r} must use finite numbers")
    return value


def _decimals(text: str) -> int:
    try:
        exponent = Decimal(text).as_tuple().exponent
    except InvalidOperation:
        return 12
    return max(-exponent, 0) if isinstance(exponent, int) else 12


def parse_grid_values(spec: str) -> list[int | float | str]:
    """Values from ``"start:stop:step"`` (inclusive), ``"a,b,c"`` or a single value.

    Bad text raises ParameterError with the accepted forms.
    """
    text = str(spec).strip()
    if not text:
        raise ParameterError(
            "empty grid value: write start:stop:step (5:50:5), a list (5,10,20) or one value"
        )
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) not in (2, 3) or not all(parts):
            raise ParameterError(f"grid range {spec!r} must be start:stop or start:stop:step")
        nums = [_number(p, text) for p in parts]
        start, stop = nums[0], nums[1]
        step = nums[2] if len(nums) == 3 else 1
        if step <= 0:
            raise ParameterError(f"grid range {spec!r} needs a positive step, got {step}")
        if start > stop:
            raise ParameterError(f"grid range {spec!r} starts above its stop: write low:high:step")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > _MAX_RANGE_VALUES:
            raise ParameterError(
                f"grid range {spec!r} has {count} values (limit {_MAX_RANGE_VALUES}): "
                "use a bigger step"
            )
        if all(isinstance(v, int) for v in nums):
            return [int(start) + i * int(step) for i in range(count)]
        digits = max(_decimals(p) for p in parts) + 2
        return [round(start + i * step, digits) for i in range(count)]
    items = [p.strip() for p in text.split(",")]
    if not all(items):
        raise ParameterError(f"grid list {spec!r} has an empty item: write values like 5,10,20")
    out: list[int | float | str] = []
    for item in items:
        if _INT.fullmatch(item):
            out.append(int(item))
            continue
        try:
            value = float(item)
        except ValueError:
            out.append(item)
            continue
        out.append(value if math.isfinite(value) else item)
    return out


def _grid_value(spec: ParamSpec, raw: Any) -> Any:
    value = spec.parse(raw)
    if spec.choices and value not in spec.choices:
        raise ParameterError(
            f"grid value {value!r} for {spec.name!r} is not one of {', '.join(spec.choices)}"
        )
    below = spec.low is not None and value < spec.low
    above = spec.high is not None and value > spec.high
    if spec.type in (int, float) and (below or above):
        raise ParameterError(
            f"grid value {spec.name}={value} is outside its bounds "
            f"{spec.describe_bounds()}: change the grid range"
        )
    return value


def expand_grid(
    strategy: str | type[Strategy], grid: Mapping[str, Sequence[Any]]
) -> tuple[list[dict[str, Any]], int]:
    """(valid combinations as dicts of the grid's names, number skipped by ``check()``).

    A value may also be a grid string such as ``"5:50:5"`` (see :func:`parse_grid_values`).
    """
    cls = strategy_class(strategy)
    specs = {s.name: s for s in cls.param_specs()}
    unknown = sorted(set(grid) - set(specs))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)} in the grid for strategy "
            f"{strategy_name(cls)!r}; known: {', '.join(specs) or 'none'}"
        )
    names = list(grid)
    axes: list[list[Any]] = []
    for name in names:
        raw = grid[name]
        values = parse_grid_values(raw) if isinstance(raw, str) else raw
        if hasattr(values, "tolist"):  # NumPy arrays and scalars
            values = values.tolist()
        if not isinstance(values, Sequence) or isinstance(values, str):
            values = [values]
        if len(values) == 0:
            raise ParameterError(f"grid for {name!r} has no values: give at least one")
        checked = []
        for v in values:
            value = _grid_value(specs[name], v)
            if value not in checked:
                checked.append(value)
        axes.append(checked)
    total = math.prod(len(a) for a in axes)
    if total > MAX_COMBOS:
        raise ParameterError(
            f"the grid has {total} combinations (limit {MAX_COMBOS}): use coarser steps"
        )
    combos: list[dict[str, Any]] = []
    skipped = 0
    first_error = ""
    for values in itertools.product(*axes):
        combo = dict(zip(names, values, strict=True))
        try:
            cls.make_params(combo)
        except ParameterError as exc:
            skipped += 1
            first_error = first_error or str(exc)
            continue
        combos.append(combo)
    if not combos:
        raise ParameterError(
            f"all {skipped} grid combinations are invalid (first: {first_error}): adjust the ranges"
        )
    return combos, skipped


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
