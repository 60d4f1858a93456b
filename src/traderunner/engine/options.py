"""Backtest options: how signals become fills, and what fills cost.

=================  ===========  ==============================================================
option             default      meaning
=================  ===========  ==============================================================
``fill``           next_open    ``next_open``: a signal computed on the close of bar t fills at
                                the open of bar t+1. ``close``: it fills at the close of bar t
                                (optimistic; what most vectorised libraries do by default).
``direction``      long         ``long``: only the +1 side of the target is traded; ``short``:
                                only -1; ``both``: long and short, reversing in one bar.
``size``           1.0          fraction of current equity committed per entry, 0 < size <= 1.
``units``          fractional   ``fractional``: any number of units. ``whole``: the units are
                                rounded down to a multiple of ``lot_size`` (the peers' rule:
                                floor of equity x size / fill price, costs included).
``lot_size``       1            with ``units=whole``, units are a multiple of this (a whole
                                number >= 1; 100 for round lots).
``cash``           100000       starting cash (split equally over the symbols of a backtest).
``fees_bps``       0            fee per fill, basis points of the filled notional.
``fee_per_order``  0            fixed fee per fill, in cash.
``slippage_bps``   0            every fill is moved against the trader by this many bps.
``stop_loss``      None         exit when price moves this fraction against the entry price.
``take_profit``    None         exit when price moves this fraction in favour of the entry.
``trailing_stop``  None         exit when price falls this fraction from the best price since
                                entry (rises, for a short).
=================  ===========  ==============================================================

Stops are checked on every bar the position is open, on that bar's high/low; a bar that opens
through a stop level fills at its open (a gap), otherwise at the level.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from traderunner.errors import OptionError


class Fill(StrEnum):
    NEXT_OPEN = "next_open"
    CLOSE = "close"


class Units(StrEnum):
    FRACTIONAL = "fractional"
    WHOLE = "whole"


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    """Validated engine options; see the module docstring for each one's meaning."""

    fill: Fill = Fill.NEXT_OPEN
    direction: Direction = Direction.LONG
    size: float = 1.0
    units: Units = Units.FRACTIONAL
    lot_size: float = 1.0
    cash: float = 100_000.0
    fees_bps: float = 0.0
    fee_per_order: float = 0.0
    slippage_bps: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None

    def __post_init__(self) -> None:
        for name, enum in (("fill", Fill), ("direction", Direction), ("units", Units)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(str(value).strip().lower()))
            except ValueError:
                allowed = ", ".join(e.value for e in enum)
                raise OptionError(f"{name} must be one of {allowed}, got {value!r}") from None
        for name in ("size", "lot_size", "cash", "fees_bps", "fee_per_order", "slippage_bps"):
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        if not 0.0 < self.size <= 1.0:
            raise OptionError(f"size must be a fraction of equity in (0, 1], got {self.size}")
        if self.lot_size < 1 or self.lot_size != int(self.lot_size):
            raise OptionError(f"lot_size must be a whole number >= 1, got {self.lot_size:g}")
        if self.lot_size != 1 and self.units is not Units.WHOLE:
            raise OptionError("lot_size needs units=whole (fractional units have no lots)")
        if self.cash <= 0:
            raise OptionError(f"cash must be positive, got {self.cash}")
        for name in ("fees_bps", "fee_per_order", "slippage_bps"):
            if getattr(self, name) < 0:
                raise OptionError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.fees_bps >= 10_000 or self.slippage_bps >= 10_000:
            raise OptionError("fees_bps and slippage_bps must be below 10000 (100%)")
        for name in ("stop_loss", "take_profit", "trailing_stop"):
            value = getattr(self, name)
            if value is None:
                continue
            value = _number(name, value)
            object.__setattr__(self, name, value)
            upper = 1.0 if name != "take_profit" else math.inf
            if not 0.0 < value < upper:
                bound = "(0, 1)" if upper == 1.0 else "> 0"
                raise OptionError(
                    f"{name} is a fraction of the entry price and must be {bound}, "
                    f"got {value} (for 2% write 0.02)"
                )

    @classmethod
    def from_kwargs(cls, **options: Any) -> BacktestOptions:
        """Build from keyword options; unknown names raise OptionError listing the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise OptionError(
                f"unknown backtest option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        # None means "use the default" for options that have a non-None default.
        return cls(**{k: v for k, v in options.items() if v is not None or k in _NULLABLE})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every option."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, StrEnum) else value
        return out


_NULLABLE = frozenset({"stop_loss", "take_profit", "trailing_stop"})


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise OptionError(f"{name} must be a finite number, got {value!r}")
    return number
