"""Plain-text formatting of runs shared by the CLI's tables and the HTML report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Metrics that are fractions and read best as percentages.
_PERCENT = {
    "total_return",
    "cagr",
    "annual_volatility",
    "max_drawdown",
    "win_rate",
    "exposure",
    "best_trade",
    "worst_trade",
}
_INTEGER = {"trades", "max_drawdown_duration_bars"}
_MONEY = {"start_value", "end_value", "expectancy"}


def format_metric(name: str, value: Any) -> str:
    """One metric value as text: percentages, counts, money, or 4 significant digits."""
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "-"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if name in _PERCENT:
        return f"{number * 100:.2f}%"
    if name in _INTEGER:
        return f"{number:,.0f}"
    if name in _MONEY:
        return f"{number:,.2f}"
    return f"{number:,.4g}" if abs(number) < 1000 else f"{number:,.0f}"


_DIRECTION = {"long": "long only", "short": "short only", "both": "long and short"}
_FILL = {"next_open": "fills at the next open", "close": "fills at the signal bar's close"}


def params_text(params: Mapping[str, Any]) -> str:
    """``fast=10 slow=50`` (or ``(defaults)``)."""
    return " ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"


def grid_text(grid: Mapping[str, Sequence[Any]]) -> str:
    """``fast=5..50 (10 values) slow=20,40``: a sweep's grid in a line."""
    parts = []
    for name, values in grid.items():
        values = list(values)
        if len(values) > 4:
            parts.append(f"{name}={values[0]}..{values[-1]} ({len(values)} values)")
        else:
            parts.append(f"{name}={','.join(str(v) for v in values)}")
    return " ".join(parts)


def settings_text(options: Mapping[str, Any]) -> str:
    """Direction, fills, sizing, costs and stops of a run in one line (every option given)."""

    def pct(value: Any) -> str:
        return f"{float(value) * 100:g}%"

    size = float(options.get("size", 1.0))
    parts = [
        _DIRECTION.get(str(options.get("direction")), str(options.get("direction"))),
        _FILL.get(str(options.get("fill")), str(options.get("fill"))),
        f"size {pct(size)} of equity",
        f"cash {float(options.get('cash', 0)):,.0f}",
    ]
    fees, per_order = float(options.get("fees_bps") or 0), float(options.get("fee_per_order") or 0)
    slippage = float(options.get("slippage_bps") or 0)
    if fees or per_order or slippage:
        parts.append(f"fees {fees:g} bps + {per_order:g} per fill, slippage {slippage:g} bps")
    else:
        parts.append("no fees or slippage")
    stops = [
        f"{label} {pct(options[name])}"
        for name, label in (
            ("stop_loss", "stop-loss"),
            ("take_profit", "take-profit"),
            ("trailing_stop", "trailing stop"),
        )
        if options.get(name) is not None
    ]
    parts.append(", ".join(stops) if stops else "no stops")
    return " · ".join(parts)
