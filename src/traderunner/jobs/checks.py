"""Field-by-field checks of a job's input, for forms that show each error beside its field.

:func:`check_fields` runs the same pure checks as :func:`traderunner.jobs.spec.validate`
(``Strategy`` parameters, ``engine.options``, timeframe, period, grid values) one field at a
time and returns every field's error, so a form can show them all at once. It does not replace
``validate``: a form that passed here still submits through ``JobClient.submit``, which checks
the whole spec against the store (symbols, data in the period, cross-field rules) before
anything is written; that error is the form's own line.

Field names: ``strategy``, ``symbols``, ``timeframe``, ``period``, ``param:NAME``,
``grid:NAME``, ``option:NAME``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from traderunner.domain.period import Period
from traderunner.domain.timeframe import Timeframe
from traderunner.engine.options import BacktestOptions
from traderunner.errors import TraderunnerError
from traderunner.strategies import get_strategy
from traderunner.strategies.grid import parse_grid_values

FieldErrors = dict[str, str]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_fields(
    *,
    strategy: str | None,
    symbols: Sequence[str] | None,
    timeframe: str | None,
    start: str | None,
    end: str | None,
    params: Mapping[str, Any] | None = None,
    grid: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[FieldErrors, dict[str, Any]]:
    """Every field's error (empty when all pass) and the values parsed from the text given.

    The parsed values are ``params`` (typed, blanks left out: the default applies), ``grid``
    (name -> list of values, from ``5:50:5`` or ``5,10,20``; blanks left out) and ``options``
    (blanks left out).
    """
    errors: FieldErrors = {}
    parsed: dict[str, Any] = {"params": {}, "grid": {}, "options": {}}
    cls = None
    try:
        if _blank(strategy):
            raise _MissingError("choose a strategy")
        cls = get_strategy(str(strategy))
    except (TraderunnerError, _MissingError) as exc:
        errors["strategy"] = str(exc)
    if not symbols:
        errors["symbols"] = "choose at least one symbol"
    try:
        Timeframe.parse(str(timeframe or ""))
    except TraderunnerError as exc:
        errors["timeframe"] = str(exc)
    try:
        Period.parse(start or None, end or None)
    except TraderunnerError as exc:
        errors["period"] = str(exc)
    if cls is not None:
        specs = {s.name: s for s in cls.param_specs()}
        for name, raw in (params or {}).items():
            if _blank(raw) or name not in specs:
                continue
            try:
                parsed["params"][name] = specs[name].check(_strip(raw))
            except TraderunnerError as exc:
                errors[f"param:{name}"] = str(exc)
        for name, raw in (grid or {}).items():
            if _blank(raw) or name not in specs:
                continue
            try:
                values = parse_grid_values(str(raw))
                parsed["grid"][name] = [specs[name].check(v) for v in values]
            except TraderunnerError as exc:
                errors[f"grid:{name}"] = str(exc)
    for name, raw in (options or {}).items():
        if _blank(raw):
            continue
        value = _strip(raw)
        try:
            checked = getattr(BacktestOptions.from_kwargs(**{name: value}), name)
        except TraderunnerError as exc:
            errors[f"option:{name}"] = str(exc)
            continue
        parsed["options"][name] = getattr(checked, "value", checked)  # enums as their text
    return errors, parsed


def _strip(raw: Any) -> Any:
    return raw.strip() if isinstance(raw, str) else raw


class _MissingError(Exception):
    pass


__all__ = ["FieldErrors", "check_fields"]
