"""Sweep grids: the grid syntax and its expansion into checked parameter combinations. Pure.

The CLI, the job client (and so the dashboard) and the engine all check a grid here, so a grid
is refused the same way whether it runs in process or as a job, and the client needs neither
the engine nor numba for it.

* :func:`parse_grid_values` reads the grid syntax: ``"5:50:5"`` is an inclusive range (ints
  when start, stop and step are all ints, floats otherwise, e.g. ``"0.5:2:0.5"``; ``"a:b"``
  steps by 1), ``"5,10,20"`` a list, ``"7"`` one value.
* :func:`expand_grid` checks every name and value against the strategy's ``Params``: an
  unknown name or a value out of bounds raises ParameterError (a user error), while a
  combination rejected by the Params' cross-field ``check()`` (say ``fast >= slow``) is skipped
  and counted. A grid with nothing left raises ParameterError.
* :data:`MAX_COMBINATIONS` is the one limit on sweep size, local or submitted: the grid's
  combinations are counted before ``check()`` skips any, so the limit is known from the grid
  alone, before anything is built.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from traderunner.errors import ParameterError
from traderunner.strategies.base import ParamSpec, Strategy
from traderunner.strategies.registry import get_strategy

#: The largest sweep, in combinations of its grid, in process or as a job. Bigger grids are
#: almost always a typo in a range, and every combination becomes a stored result row.
MAX_COMBINATIONS = 100_000
_MAX_RANGE_VALUES = 100_000
_INT = re.compile(r"[+-]?\d+")


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
    cls = strategy if isinstance(strategy, type) else get_strategy(strategy)
    specs = {s.name: s for s in cls.param_specs()}
    unknown = sorted(set(grid) - set(specs))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)} in the grid for strategy "
            f"{cls.name!r}; known: {', '.join(specs) or 'none'}"
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
    if total > MAX_COMBINATIONS:
        raise ParameterError(
            f"the grid has {total} combinations; a sweep runs at most {MAX_COMBINATIONS}: "
            "use coarser steps or fewer values"
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
