"""The one fill step: what happens to an account on one bar, for backtests and the paper broker.

:func:`step` is a numba function that takes the account's state, one bar (open, high, low,
close), the strategy's target for that bar and the engine options, and applies everything the
fill rules of :mod:`traderunner.engine.kernel` say about that bar: the fill at this open of a
change seen on the previous close, stop-loss / take-profit / trailing-stop exits on this bar's
range, and the change of target seen on this close (filled now for ``fill=close``, remembered
for the next bar's open for ``fill=next_open``), with sizing, fees and slippage. The backtest
kernel calls it once per bar; :class:`Stepper` calls the same compiled function one bar at a
time for the live paper broker, so a paper account and a backtest on the same bars and targets
fill identically by construction.

State: one record of :data:`STATE_DTYPE` (``new_state(cash)[0]``)::

    cash, units (negative = short), entry_price, entry_fee, entry_bar, extreme (peak of a
    long / trough of a short since entry), acted (last target acted on), pending (1 = a fill
    is due at the next open), fees_paid, slippage_paid (cash lost to slippage, against the
    unslipped price), and this bar's outbox: n_fills, fills, n_trades, trades

A record reaches numba functions as a plain pointer (an array would be reference-counted on
every call), and numba inlines the step and its helpers into the caller (``inline="always"``),
so the backtest loop is one flat function, as fast as a hand-written loop; a call per bar, even
to a rarely taken branch, cost about 10 ns a bar.

Options (:data:`OPTION_FIELDS`, a tuple of floats built by :func:`option_array`)::

    fill_at_close, direction (0 long, 1 short, 2 both), size, fee_rate (fees_bps / 1e4),
    fee_fixed, slippage (slippage_bps / 1e4), stop_loss, take_profit, trailing_stop (NaN =
    off), whole (1 = whole units), lot_size, any_stop (1 = some stop is on)

The outbox holds what this bar did (emptied at the start of every step; the caller copies it
to its logs): at most :data:`MAX_FILLS_PER_BAR` fills and :data:`MAX_TRADES_PER_BAR` closed
trades (a reversal at the open, then a stop on the new position).

* a trade row: entry bar, exit bar, entry price, exit price, units (signed), pnl, fees
  (entry + exit), exit reason code (:data:`EXIT_REASONS`);
* a fill row: bar, side (+1 buy, -1 sell), units (positive), price (after slippage), fee,
  reason code (:data:`EXIT_REASONS`; entries are ``signal``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from traderunner.engine.options import BacktestOptions, Direction, Fill, Units

FloatArray = npt.NDArray[np.float64]

#: Exit reason codes, indexing :data:`EXIT_REASONS` (fills use the same codes).
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, END = 0, 1, 2, 3, 4
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end")

MAX_FILLS_PER_BAR = 3
MAX_TRADES_PER_BAR = 2
TRADE_WIDTH = 8
FILL_WIDTH = 6
TRADE_FIELDS = (
    "entry_bar",
    "exit_bar",
    "entry_price",
    "exit_price",
    "units",
    "pnl",
    "fees",
    "reason",
)
FILL_FIELDS = ("bar", "side", "units", "price", "fee", "reason")

#: The account's scalar state, in :meth:`Stepper.to_dict` order.
STATE_FIELDS = (
    "cash",
    "units",
    "entry_price",
    "entry_fee",
    "entry_bar",
    "extreme",
    "acted",
    "pending",
    "fees_paid",
    "slippage_paid",
)
STATE_DTYPE = np.dtype(
    [(name, np.float64) for name in STATE_FIELDS]
    + [
        ("n_fills", np.int64),
        ("fills", np.float64, (MAX_FILLS_PER_BAR, FILL_WIDTH)),
        ("n_trades", np.int64),
        ("trades", np.float64, (MAX_TRADES_PER_BAR, TRADE_WIDTH)),
    ],
    align=True,
)

OPTION_FIELDS = (
    "fill_at_close",
    "direction",
    "size",
    "fee_rate",
    "fee_fixed",
    "slippage",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "whole",
    "lot_size",
    "any_stop",
)
(
    O_FILL_CLOSE,
    O_DIRECTION,
    O_SIZE,
    O_FEE_RATE,
    O_FEE_FIXED,
    O_SLIP,
    O_SL,
    O_TP,
    O_TRAIL,
    O_WHOLE,
    O_LOT,
    O_ANY_STOP,
) = range(len(OPTION_FIELDS))

OptionTuple = tuple[float, ...]
# numba's type of a state record, for signatures and typed containers.
Record = Any

_DIRECTION_CODE = {Direction.LONG: 0, Direction.SHORT: 1, Direction.BOTH: 2}


def _stop(value: float | None) -> float:
    return math.nan if value is None else float(value)


def option_array(options: BacktestOptions) -> OptionTuple:
    """The engine options as the tuple of floats :func:`step` reads (module docstring)."""
    no_stop = options.stop_loss is None and options.take_profit is None
    no_stop = no_stop and options.trailing_stop is None
    return (
        1.0 if options.fill is Fill.CLOSE else 0.0,
        float(_DIRECTION_CODE[options.direction]),
        float(options.size),
        float(options.fees_bps) / 1e4,
        float(options.fee_per_order),
        float(options.slippage_bps) / 1e4,
        _stop(options.stop_loss),
        _stop(options.take_profit),
        _stop(options.trailing_stop),
        1.0 if options.units is Units.WHOLE else 0.0,
        float(options.lot_size),
        0.0 if no_stop else 1.0,
    )


def new_state(cash: float) -> npt.NDArray[np.void]:
    """A one-element array holding a flat account with ``cash``; ``[0]`` is the record."""
    state = np.zeros(1, dtype=STATE_DTYPE)
    state[0]["cash"] = float(cash)
    return state


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def filtered_target(s: int, direction: int) -> int:  # pragma: no cover - compiled
    """The target clipped to -1..1 with the direction filter applied (0 long, 1 short)."""
    if s > 1:
        s = 1
    elif s < -1:
        s = -1
    if (direction == 0 and s < 0) or (direction == 1 and s > 0):
        return 0
    return s


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _log_fill(  # pragma: no cover - compiled
    st: Record, i: int, side: float, qty: float, price: float, fee: float, reason: int, raw: float
) -> None:
    k = st.n_fills
    # Element by element: a row view of the record would be reference-counted.
    st.fills[k, 0] = i
    st.fills[k, 1] = side
    st.fills[k, 2] = qty
    st.fills[k, 3] = price
    st.fills[k, 4] = fee
    st.fills[k, 5] = reason
    st.n_fills = k + 1
    st.fees_paid += fee
    st.slippage_paid += qty * abs(price - raw)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _close_position(  # pragma: no cover - compiled
    st: Record, opts: OptionTuple, raw: float, i: int, reason: int
) -> None:
    """Exit the whole position at ``raw`` (before slippage), logging the fill and the trade."""
    units = st.units
    side = 1.0 if units > 0.0 else -1.0
    xpx = raw * (1.0 - opts[O_SLIP] * side)
    xfee = abs(units) * xpx * opts[O_FEE_RATE] + opts[O_FEE_FIXED]
    st.cash += units * xpx - xfee
    _log_fill(st, i, -side, abs(units), xpx, xfee, reason, raw)
    k = st.n_trades
    entry_px = st.entry_price
    entry_fee = st.entry_fee
    st.trades[k, 0] = st.entry_bar
    st.trades[k, 1] = i
    st.trades[k, 2] = entry_px
    st.trades[k, 3] = xpx
    st.trades[k, 4] = units
    st.trades[k, 5] = units * (xpx - entry_px) - entry_fee - xfee
    st.trades[k, 6] = entry_fee + xfee
    st.trades[k, 7] = reason
    st.n_trades = k + 1
    st.units = 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _trade_to(  # pragma: no cover - compiled
    st: Record, opts: OptionTuple, want: int, price: float, i: int
) -> None:
    """Close a position on the other side (or for a flat target), then open ``want`` if flat."""
    units = st.units
    side = 0 if units == 0.0 else (1 if units > 0.0 else -1)
    if side != 0 and side != want:
        _close_position(st, opts, price, i, SIGNAL)
        side = 0
    if side == 0 and want != 0:
        fee_rate = opts[O_FEE_RATE]
        fee_fixed = opts[O_FEE_FIXED]
        epx = price * (1.0 + opts[O_SLIP] * want)
        qty = (st.cash * opts[O_SIZE] - fee_fixed) / (epx * (1.0 + fee_rate))
        if opts[O_WHOLE] != 0.0 and qty > 0.0:
            lot = opts[O_LOT]
            qty = math.floor(qty / lot) * lot
        if qty > 0.0:
            fee = qty * epx * fee_rate + fee_fixed
            st.units = qty * want
            st.cash -= qty * want * epx + fee
            st.entry_price = epx
            st.entry_fee = fee
            st.entry_bar = i
            st.extreme = epx
            _log_fill(st, i, float(want), qty, epx, fee, SIGNAL, price)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _stop_hit(  # pragma: no cover - compiled
    units: float,
    entry_px: float,
    extreme: float,
    o: float,
    h: float,
    lo: float,
    sl: float,
    tp: float,
    trail: float,
) -> tuple[int, float, float]:
    """(exit reason or -1, exit level before slippage, updated extreme) for this bar.

    Scalars only, so the compiler inlines it into the per-bar loop.
    """
    sl_on = not math.isnan(sl)
    tp_on = not math.isnan(tp)
    tr_on = not math.isnan(trail)
    stop_on = sl_on or tr_on
    if units > 0.0:
        extreme = max(extreme, o)
        stop = -np.inf
        reason = STOP_LOSS
        if sl_on:
            stop = entry_px * (1.0 - sl)
        if tr_on and extreme * (1.0 - trail) > stop:
            stop = extreme * (1.0 - trail)
            reason = TRAILING_STOP
        target = entry_px * (1.0 + tp) if tp_on else np.inf
        if stop_on and o <= stop:
            return reason, o, extreme
        if tp_on and o >= target:
            return TAKE_PROFIT, o, extreme
        if stop_on and lo <= stop:
            return reason, stop, extreme
        if tp_on and h >= target:
            return TAKE_PROFIT, target, extreme
        # The high joins the peak only now: it may have come after the low.
        return -1, 0.0, max(extreme, h)
    extreme = min(extreme, o)
    stop = np.inf
    reason = STOP_LOSS
    if sl_on:
        stop = entry_px * (1.0 + sl)
    if tr_on and extreme * (1.0 + trail) < stop:
        stop = extreme * (1.0 + trail)
        reason = TRAILING_STOP
    target = entry_px * (1.0 - tp) if tp_on else -np.inf
    if stop_on and o >= stop:
        return reason, o, extreme
    if tp_on and o <= target:
        return TAKE_PROFIT, o, extreme
    if stop_on and h >= stop:
        return reason, stop, extreme
    if tp_on and lo <= target:
        return TAKE_PROFIT, target, extreme
    return -1, 0.0, min(extreme, lo)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def step(  # pragma: no cover - compiled
    st: Record,
    opts: OptionTuple,
    i: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    target: int,
) -> float:
    """Apply bar ``i`` (open ``o``, high ``h``, low ``lo``, close ``c``) with the strategy's
    ``target`` for it to the state record ``st``; return the equity at its close.

    In order: (1) a change seen on the previous close fills at this open (``next_open``);
    (2) stops are checked on this bar's range; (3) a change of the filtered target on this close
    fills at the close (``close``) or is marked pending for the next bar's open. What the bar
    did is in the record's outbox afterwards; ``i`` is only recorded there (the bar's position
    in the caller's series).
    """
    st.n_fills = 0
    st.n_trades = 0
    if st.pending != 0.0:
        st.pending = 0.0
        _trade_to(st, opts, int(st.acted), o, i)
    units = st.units
    if units != 0.0 and opts[O_ANY_STOP] != 0.0:
        hit, level, extreme = _stop_hit(
            units, st.entry_price, st.extreme, o, h, lo, opts[O_SL], opts[O_TP], opts[O_TRAIL]
        )
        st.extreme = extreme
        if hit >= 0:
            _close_position(st, opts, level, i, hit)
    s = filtered_target(target, int(opts[O_DIRECTION]))
    if s != int(st.acted):
        st.acted = s
        if opts[O_FILL_CLOSE] != 0.0:
            _trade_to(st, opts, s, c, i)
        else:
            st.pending = 1.0
    return st.cash + st.units * c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def step_one(  # pragma: no cover - compiled
    state: npt.NDArray[np.void],
    opts: OptionTuple,
    i: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    target: int,
) -> float:
    """:func:`step` on ``state[0]``, for callers in Python (a record is reached through its
    array, so the changes land in it)."""
    return step(state[0], opts, i, o, h, lo, c, target)


# -- one bar at a time (the paper broker) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepFill:
    """One fill: ``side`` is ``buy`` or ``sell``, ``units`` positive, ``price`` after slippage."""

    time_ns: int
    side: str
    units: float
    price: float
    fee: float
    reason: str


@dataclass(frozen=True, slots=True)
class StepTrade:
    """One closed round trip; ``units`` negative for a short; ``fees`` entry + exit."""

    entry_time_ns: int
    exit_time_ns: int
    entry_price: float
    exit_price: float
    units: float
    pnl: float
    fees: float
    exit_reason: str


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one :meth:`Stepper.on_bar` call did: its fills and closed trades, the equity at
    the bar's close and the units held after it."""

    fills: tuple[StepFill, ...]
    trades: tuple[StepTrade, ...]
    equity: float
    units: float


class Stepper:
    """One account driven bar by bar through :func:`step` (the paper broker's fill engine).

    ``Stepper(options, cash=None)``: ``options`` is a :class:`BacktestOptions` or a mapping of
    its fields (validated the same way); ``cash`` overrides ``options.cash``. Each
    :meth:`on_bar` call applies one bar with the target the strategy computed on it; feeding
    the bars and targets of a backtest one by one gives exactly that backtest's fills, trades
    and equity (a position still open is not closed: call :meth:`mark` to value it).
    """

    def __init__(
        self, options: BacktestOptions | Mapping[str, Any] | None = None, cash: float | None = None
    ) -> None:
        if options is None:
            options = BacktestOptions()
        elif not isinstance(options, BacktestOptions):
            options = BacktestOptions.from_kwargs(**dict(options))
        self.options = options
        self._opts = option_array(options)
        self._state = new_state(options.cash if cash is None else float(cash))
        self._bars = 0
        self._last_ts: int | None = None
        self._entry_ts = 0
        self._last_close = math.nan

    # -- reading --------------------------------------------------------------------------

    def _field(self, name: str) -> float:
        return float(self._state[0][name])

    @property
    def cash(self) -> float:
        return self._field("cash")

    @property
    def units(self) -> float:
        """Units held now (negative = short)."""
        return self._field("units")

    @property
    def entry_price(self) -> float | None:
        return self._field("entry_price") if self.units != 0.0 else None

    @property
    def pending(self) -> bool:
        """True when a change of target waits for the next bar's open (``next_open``)."""
        return bool(self._field("pending"))

    @property
    def bars(self) -> int:
        return self._bars

    @property
    def fees_paid(self) -> float:
        return self._field("fees_paid")

    @property
    def slippage_paid(self) -> float:
        return self._field("slippage_paid")

    def mark(self, price: float | None = None) -> float:
        """Equity with the position valued at ``price`` (default: the last bar's close)."""
        px = self._last_close if price is None else float(price)
        return self.cash + self.units * px if self.units != 0.0 else self.cash

    # -- driving --------------------------------------------------------------------------

    def on_bar(
        self, time_ns: int, open_: float, high: float, low: float, close: float, target: int
    ) -> StepOutcome:
        """Apply one bar (timestamp ``time_ns``, int ns UTC, strictly after the previous one)
        with the strategy's target for it (-1, 0, 1); return what happened."""
        ts = int(time_ns)
        if self._last_ts is not None and ts <= self._last_ts:
            raise ValueError(f"bar time {ts} is not after the previous bar's {self._last_ts}")
        prices = (float(open_), float(high), float(low), float(close))
        if not all(p > 0.0 and math.isfinite(p) for p in prices):
            raise ValueError(f"bar prices must be finite and positive, got {prices}")
        equity = step_one(self._state, self._opts, self._bars, *prices, int(target))
        rec = self._state[0]
        fills = tuple(
            StepFill(
                time_ns=ts,
                side="buy" if row[1] > 0 else "sell",
                units=float(row[2]),
                price=float(row[3]),
                fee=float(row[4]),
                reason=EXIT_REASONS[int(row[5])],
            )
            for row in rec["fills"][: int(rec["n_fills"])]
        )
        trades = []
        for row in rec["trades"][: int(rec["n_trades"])]:
            # A trade opened and closed on this bar has its entry on this bar too.
            entry_ts = ts if int(row[0]) == self._bars else self._entry_ts
            trades.append(
                StepTrade(
                    entry_time_ns=entry_ts,
                    exit_time_ns=ts,
                    entry_price=float(row[2]),
                    exit_price=float(row[3]),
                    units=float(row[4]),
                    pnl=float(row[5]),
                    fees=float(row[6]),
                    exit_reason=EXIT_REASONS[int(row[7])],
                )
            )
        if self.units != 0.0 and int(rec["entry_bar"]) == self._bars:
            self._entry_ts = ts
        self._bars += 1
        self._last_ts = ts
        self._last_close = prices[3]
        return StepOutcome(
            fills=fills, trades=tuple(trades), equity=float(equity), units=self.units
        )

    # -- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state, enough for :meth:`from_dict` to continue exactly where this is."""
        return {
            "options": self.options.to_dict(),
            "state": {name: self._field(name) for name in STATE_FIELDS},
            "bars": self._bars,
            "last_ts": self._last_ts,
            "entry_ts": self._entry_ts,
            "last_close": None if math.isnan(self._last_close) else self._last_close,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stepper:
        """A Stepper restored from :meth:`to_dict` output."""
        out = cls(BacktestOptions.from_kwargs(**dict(data["options"])))
        state = data["state"]
        for name in STATE_FIELDS:
            # The outbox is one bar's scratch space; only the account carries over.
            out._state[0][name] = float(state[name])
        out._bars = int(data["bars"])
        out._last_ts = None if data.get("last_ts") is None else int(data["last_ts"])
        out._entry_ts = int(data.get("entry_ts") or 0)
        last_close = data.get("last_close")
        out._last_close = math.nan if last_close is None else float(last_close)
        return out
