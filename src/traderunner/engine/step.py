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

State (:data:`STATE_FIELDS`, one float64 array; integers are exact in float64 up to 2**53)::

    cash, units (negative = short), entry_price, entry_fee, entry_bar, extreme (peak of a
    long / trough of a short since entry), acted (last target acted on), pending (1 = a fill
    is due at the next open), trade_cursor, fill_cursor (rows used in the logs), fees_paid,
    slippage_paid (cash lost to slippage, against the unslipped price)

Options (:data:`OPTION_FIELDS`, one float64 array built by :func:`option_array`)::

    fill_at_close, direction (0 long, 1 short, 2 both), size, fee_rate (fees_bps / 1e4),
    fee_fixed, slippage (slippage_bps / 1e4), stop_loss, take_profit, trailing_stop (NaN =
    off), whole (1 = whole units), lot_size

Logs written by a step (row ``cursor`` and on, the cursor advanced):

* trades, ``(n, 8)``: entry bar, exit bar, entry price, exit price, units (signed), pnl, fees
  (entry + exit), exit reason code (:data:`EXIT_REASONS`);
* fills, ``(n, 6)``: bar, side (+1 buy, -1 sell), units (positive), price (after slippage),
  fee, reason code (:data:`EXIT_REASONS`; entries are ``signal``).

One bar writes at most :data:`MAX_FILLS_PER_BAR` fills and :data:`MAX_TRADES_PER_BAR` trades
(a reversal at the open, then a stop on the new position), so a caller that keeps that many
free rows never overflows.
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

STATE_FIELDS = (
    "cash",
    "units",
    "entry_price",
    "entry_fee",
    "entry_bar",
    "extreme",
    "acted",
    "pending",
    "trade_cursor",
    "fill_cursor",
    "fees_paid",
    "slippage_paid",
)
(
    CASH,
    UNITS,
    ENTRY_PX,
    ENTRY_FEE,
    ENTRY_I,
    EXTREME,
    ACTED,
    PENDING,
    TRADE_K,
    FILL_K,
    FEES_PAID,
    SLIP_PAID,
) = range(len(STATE_FIELDS))

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
) = range(len(OPTION_FIELDS))

TRADE_FIELDS = ("entry_bar", "exit_bar", "entry_price", "exit_price", "units", "pnl", "fees")
FILL_FIELDS = ("bar", "side", "units", "price", "fee", "reason")
MAX_FILLS_PER_BAR = 3
MAX_TRADES_PER_BAR = 2

_DIRECTION_CODE = {Direction.LONG: 0, Direction.SHORT: 1, Direction.BOTH: 2}


def _stop(value: float | None) -> float:
    return math.nan if value is None else float(value)


def option_array(options: BacktestOptions) -> FloatArray:
    """The engine options as the float64 array :func:`step` reads (see the module docstring)."""
    return np.array(
        [
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
        ],
        dtype=np.float64,
    )


def new_state(cash: float) -> FloatArray:
    """A flat account holding ``cash``."""
    state = np.zeros(len(STATE_FIELDS), dtype=np.float64)
    state[CASH] = float(cash)
    return state


@numba.njit(cache=True, nogil=True, error_model="numpy")
def filtered_target(s: int, direction: int) -> int:  # pragma: no cover - compiled
    """The target clipped to -1..1 with the direction filter applied (0 long, 1 short)."""
    if s > 1:
        s = 1
    elif s < -1:
        s = -1
    if (direction == 0 and s < 0) or (direction == 1 and s > 0):
        return 0
    return s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_fill(  # pragma: no cover - compiled
    state: FloatArray,
    fills: FloatArray,
    i: int,
    side: float,
    qty: float,
    price: float,
    fee: float,
    reason: int,
    raw: float,
) -> None:
    k = int(state[FILL_K])
    fills[k, 0] = i
    fills[k, 1] = side
    fills[k, 2] = qty
    fills[k, 3] = price
    fills[k, 4] = fee
    fills[k, 5] = reason
    state[FILL_K] = k + 1
    state[FEES_PAID] += fee
    state[SLIP_PAID] += qty * abs(price - raw)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _close_position(  # pragma: no cover - compiled
    state: FloatArray,
    opts: FloatArray,
    raw: float,
    i: int,
    reason: int,
    trades: FloatArray,
    fills: FloatArray,
) -> None:
    """Exit the whole position at ``raw`` (before slippage), logging the fill and the trade."""
    units = state[UNITS]
    side = 1.0 if units > 0.0 else -1.0
    xpx = raw * (1.0 - opts[O_SLIP] * side)
    xfee = abs(units) * xpx * opts[O_FEE_RATE] + opts[O_FEE_FIXED]
    state[CASH] += units * xpx - xfee
    _log_fill(state, fills, i, -side, abs(units), xpx, xfee, reason, raw)
    k = int(state[TRADE_K])
    entry_px = state[ENTRY_PX]
    entry_fee = state[ENTRY_FEE]
    trades[k, 0] = state[ENTRY_I]
    trades[k, 1] = i
    trades[k, 2] = entry_px
    trades[k, 3] = xpx
    trades[k, 4] = units
    trades[k, 5] = units * (xpx - entry_px) - entry_fee - xfee
    trades[k, 6] = entry_fee + xfee
    trades[k, 7] = reason
    state[TRADE_K] = k + 1
    state[UNITS] = 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trade_to(  # pragma: no cover - compiled
    state: FloatArray,
    opts: FloatArray,
    want: int,
    price: float,
    i: int,
    trades: FloatArray,
    fills: FloatArray,
) -> None:
    """Close a position on the other side (or for a flat target), then open ``want`` if flat."""
    units = state[UNITS]
    side = 0 if units == 0.0 else (1 if units > 0.0 else -1)
    if side != 0 and side != want:
        _close_position(state, opts, price, i, SIGNAL, trades, fills)
        side = 0
    if side == 0 and want != 0:
        fee_rate = opts[O_FEE_RATE]
        fee_fixed = opts[O_FEE_FIXED]
        epx = price * (1.0 + opts[O_SLIP] * want)
        qty = (state[CASH] * opts[O_SIZE] - fee_fixed) / (epx * (1.0 + fee_rate))
        if opts[O_WHOLE] != 0.0 and qty > 0.0:
            lot = opts[O_LOT]
            qty = math.floor(qty / lot) * lot
        if qty > 0.0:
            fee = qty * epx * fee_rate + fee_fixed
            state[UNITS] = qty * want
            state[CASH] -= qty * want * epx + fee
            state[ENTRY_PX] = epx
            state[ENTRY_FEE] = fee
            state[ENTRY_I] = i
            state[EXTREME] = epx
            _log_fill(state, fills, i, float(want), qty, epx, fee, SIGNAL, price)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stop_hit(  # pragma: no cover - compiled
    state: FloatArray, opts: FloatArray, o: float, h: float, lo: float
) -> tuple[int, float]:
    """(exit reason or -1, exit level before slippage) for this bar; updates the extreme."""
    sl = opts[O_SL]
    tp = opts[O_TP]
    trail = opts[O_TRAIL]
    sl_on = not math.isnan(sl)
    tp_on = not math.isnan(tp)
    tr_on = not math.isnan(trail)
    stop_on = sl_on or tr_on
    entry_px = state[ENTRY_PX]
    if state[UNITS] > 0.0:
        extreme = max(state[EXTREME], o)
        state[EXTREME] = extreme
        stop = -np.inf
        reason = STOP_LOSS
        if sl_on:
            stop = entry_px * (1.0 - sl)
        if tr_on and extreme * (1.0 - trail) > stop:
            stop = extreme * (1.0 - trail)
            reason = TRAILING_STOP
        target = entry_px * (1.0 + tp) if tp_on else np.inf
        if stop_on and o <= stop:
            return reason, o
        if tp_on and o >= target:
            return TAKE_PROFIT, o
        if stop_on and lo <= stop:
            return reason, stop
        if tp_on and h >= target:
            return TAKE_PROFIT, target
        # The high joins the peak only now: it may have come after the low.
        state[EXTREME] = max(extreme, h)
        return -1, 0.0
    extreme = min(state[EXTREME], o)
    state[EXTREME] = extreme
    stop = np.inf
    reason = STOP_LOSS
    if sl_on:
        stop = entry_px * (1.0 + sl)
    if tr_on and extreme * (1.0 + trail) < stop:
        stop = extreme * (1.0 + trail)
        reason = TRAILING_STOP
    target = entry_px * (1.0 - tp) if tp_on else -np.inf
    if stop_on and o >= stop:
        return reason, o
    if tp_on and o <= target:
        return TAKE_PROFIT, o
    if stop_on and h >= stop:
        return reason, stop
    if tp_on and lo <= target:
        return TAKE_PROFIT, target
    state[EXTREME] = min(extreme, lo)
    return -1, 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def step(  # pragma: no cover - compiled
    state: FloatArray,
    opts: FloatArray,
    i: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    target: int,
    trades: FloatArray,
    fills: FloatArray,
) -> float:
    """Apply bar ``i`` (open ``o``, high ``h``, low ``lo``, close ``c``) with the strategy's
    ``target`` for it to ``state``; return the equity at its close.

    In order: (1) a change seen on the previous close fills at this open (``next_open``);
    (2) stops are checked on this bar's range; (3) a change of the filtered target on this close
    fills at the close (``close``) or is marked pending for the next bar's open. ``i`` is only
    recorded in the logs (the bar's position in the caller's series).
    """
    if state[PENDING] != 0.0:
        state[PENDING] = 0.0
        _trade_to(state, opts, int(state[ACTED]), o, i, trades, fills)
    if state[UNITS] != 0.0 and not (
        math.isnan(opts[O_SL]) and math.isnan(opts[O_TP]) and math.isnan(opts[O_TRAIL])
    ):
        hit, level = _stop_hit(state, opts, o, h, lo)
        if hit >= 0:
            _close_position(state, opts, level, i, hit, trades, fills)
    s = filtered_target(target, int(opts[O_DIRECTION]))
    if s != int(state[ACTED]):
        state[ACTED] = s
        if opts[O_FILL_CLOSE] != 0.0:
            _trade_to(state, opts, s, c, i, trades, fills)
        else:
            state[PENDING] = 1.0
    return state[CASH] + state[UNITS] * c


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
        self._trades = np.zeros((MAX_TRADES_PER_BAR, 8))
        self._fills = np.zeros((MAX_FILLS_PER_BAR, 6))
        self._bars = 0
        self._last_ts: int | None = None
        self._entry_ts = 0
        self._last_close = math.nan

    # -- reading --------------------------------------------------------------------------

    @property
    def cash(self) -> float:
        return float(self._state[CASH])

    @property
    def units(self) -> float:
        """Units held now (negative = short)."""
        return float(self._state[UNITS])

    @property
    def entry_price(self) -> float | None:
        return float(self._state[ENTRY_PX]) if self.units != 0.0 else None

    @property
    def pending(self) -> bool:
        """True when a change of target waits for the next bar's open (``next_open``)."""
        return bool(self._state[PENDING])

    @property
    def bars(self) -> int:
        return self._bars

    @property
    def fees_paid(self) -> float:
        return float(self._state[FEES_PAID])

    @property
    def slippage_paid(self) -> float:
        return float(self._state[SLIP_PAID])

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
        st = self._state
        st[TRADE_K] = 0.0
        st[FILL_K] = 0.0
        equity = step(st, self._opts, self._bars, *prices, int(target), self._trades, self._fills)
        fills = tuple(
            StepFill(
                time_ns=ts,
                side="buy" if row[1] > 0 else "sell",
                units=float(row[2]),
                price=float(row[3]),
                fee=float(row[4]),
                reason=EXIT_REASONS[int(row[5])],
            )
            for row in self._fills[: int(st[FILL_K])]
        )
        trades = []
        for row in self._trades[: int(st[TRADE_K])]:
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
        if st[UNITS] != 0.0 and int(st[ENTRY_I]) == self._bars:
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
            "state": dict(zip(STATE_FIELDS, self._state.tolist(), strict=True)),
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
        out._state = np.array([float(state[name]) for name in STATE_FIELDS], dtype=np.float64)
        out._bars = int(data["bars"])
        out._last_ts = None if data.get("last_ts") is None else int(data["last_ts"])
        out._entry_ts = int(data.get("entry_ts") or 0)
        last_close = data.get("last_close")
        out._last_close = math.nan if last_close is None else float(last_close)
        return out
