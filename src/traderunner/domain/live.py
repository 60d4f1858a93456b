"""The live path's values: live strategies, orders, fills, positions, accounts, rejections.

Pure and frozen. Times of bars are int64 UTC nanoseconds (``bar_ns``: the bar's open time, as
in :class:`~traderunner.domain.candles.CandleArrays`); record times are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: The paper account a live strategy trades in unless told otherwise.
DEFAULT_ACCOUNT = "paper"


class OrderStatus(StrEnum):
    """``open``: recorded, waiting for its fill (the next bar's open, by default);
    ``filled``: the paper broker executed it; ``rejected``: a risk check refused it (see its
    rejection record); ``unchanged``: executed nothing (no units could be bought, or the
    position was already there after a stop)."""

    OPEN = "open"
    FILLED = "filled"
    REJECTED = "rejected"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class LiveStrategy:
    """A strategy the stream service runs on live candles and the trader trades.

    ``options`` are the engine's (``engine.options.BacktestOptions`` names): the trader fills
    this strategy's orders with them, so a replay matches a backtest with the same options.
    Its cash (``options["cash"]``, default 100000) is split equally over its symbols, as a
    backtest splits it; each (strategy, symbol) is one sleeve of ``account``.
    """

    name: str
    strategy: str
    symbols: tuple[str, ...]
    timeframe: str
    params: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    account: str = DEFAULT_ACCOUNT
    paused: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
            "params": dict(self.params),
            "options": dict(self.options),
            "account": self.account,
            "paused": self.paused,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True, slots=True)
class Order:
    """What one signal became: the target position of one sleeve from bar ``bar_ns`` on."""

    signal_id: str
    account: str
    live: str
    strategy: str
    symbol: str
    timeframe: str
    target: int
    previous: int
    bar_ns: int
    status: OrderStatus
    reason: str = ""
    created_ns: int = 0
    id: int | None = None
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "signal_id": self.signal_id,
            "account": self.account,
            "live": self.live,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "target": self.target,
            "previous": self.previous,
            "bar_ns": self.bar_ns,
            "status": self.status.value,
            "reason": self.reason,
            "created_ns": self.created_ns,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of the paper broker. ``seq`` orders the fills of one sleeve's bar (a
    reversal is two fills at one price); ``reason`` is the engine's exit reason or
    ``signal``; ``order_id`` is None for a stop."""

    account: str
    live: str
    symbol: str
    bar_ns: int
    seq: int
    side: str  # "buy" or "sell"
    units: float
    price: float
    fee: float
    reason: str
    order_id: int | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "account": self.account,
            "live": self.live,
            "symbol": self.symbol,
            "bar_ns": self.bar_ns,
            "seq": self.seq,
            "side": self.side,
            "units": self.units,
            "price": self.price,
            "fee": self.fee,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Position:
    """One sleeve (account, live strategy, symbol) after the bar ``bar_ns``: units held
    (negative short), its own cash, its equity ``cash + units * last_price``, and the engine
    step's state (``state``, JSON) that the next bar continues from."""

    account: str
    live: str
    symbol: str
    units: float
    entry_price: float
    cash: float
    start_cash: float
    equity: float
    last_price: float
    realized_pnl: float
    bar_ns: int
    state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        """Market value of the units (negative for a short)."""
        return self.units * self.last_price

    @property
    def unrealized_pnl(self) -> float:
        return self.units * (self.last_price - self.entry_price) if self.units else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "live": self.live,
            "symbol": self.symbol,
            "units": self.units,
            "entry_price": self.entry_price,
            "last_price": self.last_price,
            "value": self.value,
            "cash": self.cash,
            "equity": self.equity,
            "realized_pnl": self.realized_pnl,
            "unrealized_pnl": self.unrealized_pnl,
            "bar_ns": self.bar_ns,
        }


@dataclass(frozen=True, slots=True)
class Account:
    """A paper account: the sum of its sleeves, and the day's opening equity (loss limit)."""

    name: str
    start_cash: float
    cash: float
    equity: float
    realized_pnl: float
    day: str
    day_start_equity: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start_cash": self.start_cash,
            "cash": self.cash,
            "equity": self.equity,
            "realized_pnl": self.realized_pnl,
            "unrealized_pnl": self.equity - self.start_cash - self.realized_pnl,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """A risk check that refused an order: which check (``max_position_value``,
    ``max_gross_exposure``, ``max_orders_per_minute``, ``kill_switch``, ``trading_hours``)
    and why, in words."""

    signal_id: str
    account: str
    live: str
    symbol: str
    check: str
    reason: str
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal_id,
            "account": self.account,
            "live": self.live,
            "symbol": self.symbol,
            "check": self.check,
            "reason": self.reason,
            "at": self.at.isoformat() if self.at else None,
        }


# -- bus payloads (type ``candle`` v1 on candles.{tf}, type ``signal`` v1 on signals) ----------
# The stream service writes them, the trader reads them; neither imports the other, so the
# schema lives here, once.

CANDLE_V = 1
SIGNAL_V = 1


def _num(payload: Mapping[str, Any], name: str) -> float:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def _int(payload: Mapping[str, Any], name: str) -> int:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return value


def _str(payload: Mapping[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class CandleMessage:
    """A new bar, published after the store and the cache have it. ``signals`` are the ids of
    the signals the stream published for this bar (the trader steps the bar only once it has
    recorded them, whatever order the two topics arrive in)."""

    symbol: str
    timeframe: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str = ""
    signals: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "ts_ns": self.ts_ns,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "source": self.source,
            "signals": list(self.signals),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CandleMessage:
        """Raises KeyError/TypeError/ValueError for a payload that is not a candle v1."""
        signals = payload.get("signals", [])
        if not isinstance(signals, list) or not all(isinstance(s, str) for s in signals):
            raise TypeError("signals must be a list of ids")
        return cls(
            symbol=_str(payload, "symbol"),
            timeframe=_str(payload, "timeframe"),
            ts_ns=_int(payload, "ts_ns"),
            open=_num(payload, "open"),
            high=_num(payload, "high"),
            low=_num(payload, "low"),
            close=_num(payload, "close"),
            volume=_num(payload, "volume"),
            source=str(payload.get("source", "")),
            signals=tuple(signals),
        )


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """A live strategy's target position changed on the bar ``bar_ns`` (computed on its
    close) from ``previous`` to ``target``; ``close`` is that bar's close."""

    live: str
    strategy: str
    account: str
    symbol: str
    timeframe: str
    bar_ns: int
    target: int
    previous: int
    close: float

    def to_payload(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "strategy": self.strategy,
            "account": self.account,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "bar_ns": self.bar_ns,
            "target": self.target,
            "previous": self.previous,
            "close": self.close,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SignalMessage:
        """Raises KeyError/TypeError/ValueError for a payload that is not a signal v1."""
        target, previous = _int(payload, "target"), _int(payload, "previous")
        if target not in (-1, 0, 1) or previous not in (-1, 0, 1):
            raise ValueError("target and previous must be -1, 0 or 1")
        return cls(
            live=_str(payload, "live"),
            strategy=_str(payload, "strategy"),
            account=_str(payload, "account"),
            symbol=_str(payload, "symbol"),
            timeframe=_str(payload, "timeframe"),
            bar_ns=_int(payload, "bar_ns"),
            target=target,
            previous=previous,
            close=_num(payload, "close"),
        )
