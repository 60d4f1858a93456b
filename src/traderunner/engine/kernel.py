"""The numba per-bar fill loop: target positions in, equity, positions and trades out.

Semantics (the docs quote this block; tests in ``tests/unit/engine`` pin every rule):

* **Targets.** The strategy gives a target position per bar (-1, 0, 1, warm-up zeroed). The
  direction filter keeps only +1 for ``long`` (-1 becomes 0), only -1 for ``short`` and all
  of it for ``both``.
* **Acting on changes.** The engine keeps ``acted``, the last target it acted on (starting at
  0). When ``target[t] != acted`` it trades to the new target and sets ``acted = target[t]``.
  After a stop exit the position is flat but ``acted`` is unchanged, so it does not re-enter
  until the target changes again.
* **Fill timing.** ``next_open``: a change seen on the close of bar t fills at ``open[t+1]``
  (no fill when t is the last bar). ``close``: it fills at ``close[t]``. A reversal (long to
  short) is two fills at the same price: close the old position, then open the new one.
* **Sizing.** At entry the equity is ``E = cash + position value`` (flat by then) and
  ``units = (E*size - fee_per_order) / (fill_price * (1 + fees_bps/1e4))``, fractional, so fees
  never make cash negative at size 1. A short sells the same number of units. When that is not
  positive (equity used up by fees or losses) the entry is skipped.
* **Costs.** Every fill moves against the trader: buys at ``price*(1+slippage)``, sells at
  ``price*(1-slippage)``. Each fill pays ``|units|*fill_price*fees_bps/1e4 + fee_per_order``.
* **Stops** (each optional, a fraction of the entry fill price) are checked on every bar the
  position is open *after* the entry fill: for ``next_open`` on the entry bar itself (its
  high/low after the open), for ``close`` fills from the next bar on. For a long: stop-loss
  level ``entry*(1-sl)``, take-profit level ``entry*(1+tp)``, trailing level ``peak*(1-ts)``
  where ``peak = max(entry, highs of the previous bars held, this bar's open)``; this bar's high
  joins the peak only after the check, because we cannot know whether the high came before the
  low. When stop-loss and trailing stop are both active the higher level (nearer the open) is
  the stop and names the exit reason (a tie is ``stop_loss``). A bar that opens through a level
  (open <= stop, or open >= take-profit) fills at its open (a gap); otherwise low <= stop fills
  at the stop level, elif high >= take-profit fills at the take-profit level. A bar touching both
  is assumed to hit the stop first (conservative). Shorts mirror all of it (trough, lows,
  levels above/below). Stop fills pay slippage and fees like any other fill. For ``close`` fills
  a bar's stops are checked before that bar's close signal is acted on.
* **End.** A position still open after the last bar is marked at the last close (no fee, no
  slippage) and recorded as a trade with exit reason ``end``.
* **Equity** at each bar is ``cash + units * close[t]``; ``position[t]`` is the units held after
  bar t (negative for a short).

Trade records hold bar *indices*: ``entry_bar``/``exit_bar`` are the bars on which the fills
happened, and ``bars = exit_bar - entry_bar``.

The kernel is compiled once (``cache=True`` keeps the machine code in numba's file cache, so a
fresh process loads it instead of compiling) and runs without the GIL, so sweeps use threads.
:func:`simulate` normalises every argument to one fixed set of types so numba never compiles a
second specialisation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from traderunner.engine.options import BacktestOptions, Direction, Fill
from traderunner.errors import StrategyError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

#: Exit reason codes used by the kernel, indexing :data:`EXIT_REASONS`.
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, END = 0, 1, 2, 3, 4
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end")

_DIRECTION_CODE = {Direction.LONG: 0, Direction.SHORT: 1, Direction.BOTH: 2}


class KernelRun(NamedTuple):
    """Raw kernel output for one symbol; trade arrays are already trimmed to the trade count."""

    equity: FloatArray
    position: FloatArray
    entry_bar: IntArray
    exit_bar: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    units: FloatArray
    pnl: FloatArray
    fees: FloatArray
    reason: Int8Array

    @property
    def n_trades(self) -> int:
        return len(self.pnl)

    @property
    def trade_returns(self) -> FloatArray:
        """PnL over entry notional (``|units| * entry_price``) per trade."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.pnl / (np.abs(self.units) * self.entry_price)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _record(  # pragma: no cover - compiled
    tr: FloatArray,
    k: int,
    entry_i: int,
    exit_i: int,
    entry_px: float,
    exit_px: float,
    units: float,
    entry_fee: float,
    exit_fee: float,
    reason: int,
) -> int:
    tr[k, 0] = entry_i
    tr[k, 1] = exit_i
    tr[k, 2] = entry_px
    tr[k, 3] = exit_px
    tr[k, 4] = units
    tr[k, 5] = units * (exit_px - entry_px) - entry_fee - exit_fee
    tr[k, 6] = entry_fee + exit_fee
    tr[k, 7] = reason
    return k + 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _filtered(s: int, direction: int) -> int:  # pragma: no cover - compiled
    if s > 1:
        s = 1
    elif s < -1:
        s = -1
    if (direction == 0 and s < 0) or (direction == 1 and s > 0):
        return 0
    return s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _trade_to(  # pragma: no cover - compiled
    want: int,
    price: float,
    t: int,
    cash: float,
    units: float,
    entry_px: float,
    entry_fee: float,
    entry_i: int,
    extreme: float,
    tr: FloatArray,
    k: int,
    size: float,
    fee_rate: float,
    fee_fixed: float,
    slip: float,
) -> tuple[float, float, float, float, int, float, int]:
    """Close a position on the other side (or flat target), then open ``want`` if flat."""
    side = 0 if units == 0.0 else (1 if units > 0.0 else -1)
    if side != 0 and side != want:
        xpx = price * (1.0 - slip * side)
        xfee = abs(units) * xpx * fee_rate + fee_fixed
        cash += units * xpx - xfee
        k = _record(tr, k, entry_i, t, entry_px, xpx, units, entry_fee, xfee, SIGNAL)
        units = 0.0
        side = 0
    if side == 0 and want != 0:
        epx = price * (1.0 + slip * want)
        qty = (cash * size - fee_fixed) / (epx * (1.0 + fee_rate))
        if qty > 0.0:
            units = qty * want
            entry_fee = qty * epx * fee_rate + fee_fixed
            cash -= units * epx + entry_fee
            entry_px = epx
            entry_i = t
            extreme = epx
    return cash, units, entry_px, entry_fee, entry_i, extreme, k


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stops(  # pragma: no cover - compiled
    o: float,
    h: float,
    lo: float,
    units: float,
    entry_px: float,
    extreme: float,
    sl: float,
    tp: float,
    trail: float,
) -> tuple[int, float, float]:
    """(exit reason or -1, exit level before slippage, updated peak/trough) for one bar."""
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(  # pragma: no cover - compiled
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    target: Int8Array,
    equity: FloatArray,
    position: FloatArray,
    fill_at_close: bool,
    direction: int,
    size: float,
    cash0: float,
    fee_rate: float,
    fee_fixed: float,
    slip: float,
    sl: float,
    tp: float,
    trail: float,
) -> tuple[FloatArray, int]:
    n = len(close)
    # Every entry needs a change to a non-zero target, which bounds the number of trades.
    cap = 1
    prev = 0
    for t in range(n):
        s = _filtered(target[t], direction)
        if s != prev and s != 0:
            cap += 1
        prev = s
    tr = np.empty((cap, 8))
    any_stop = not (math.isnan(sl) and math.isnan(tp) and math.isnan(trail))

    cash = cash0
    units = 0.0
    acted = 0
    entry_px = 0.0
    entry_fee = 0.0
    entry_i = 0
    extreme = 0.0  # best price since entry: the peak for a long, the trough for a short
    pending = False
    k = 0
    for t in range(n):
        # 1. the change seen on the previous close fills at this open (fill=next_open);
        if pending:
            pending = False
            cash, units, entry_px, entry_fee, entry_i, extreme, k = _trade_to(
                acted,
                open_[t],
                t,
                cash,
                units,
                entry_px,
                entry_fee,
                entry_i,
                extreme,
                tr,
                k,
                size,
                fee_rate,
                fee_fixed,
                slip,
            )
        # 2. stops on this bar's range, after that open fill and before this close's signal;
        if any_stop and units != 0.0:
            hit, level, extreme = _stops(
                open_[t], high[t], low[t], units, entry_px, extreme, sl, tp, trail
            )
            if hit >= 0:
                side = 1.0 if units > 0.0 else -1.0
                xpx = level * (1.0 - slip * side)
                xfee = abs(units) * xpx * fee_rate + fee_fixed
                cash += units * xpx - xfee
                k = _record(tr, k, entry_i, t, entry_px, xpx, units, entry_fee, xfee, hit)
                units = 0.0
        # 3. a change of target on this close trades now (fill=close) or at the next open.
        s = _filtered(target[t], direction)
        if s != acted:
            acted = s
            if fill_at_close:
                cash, units, entry_px, entry_fee, entry_i, extreme, k = _trade_to(
                    s,
                    close[t],
                    t,
                    cash,
                    units,
                    entry_px,
                    entry_fee,
                    entry_i,
                    extreme,
                    tr,
                    k,
                    size,
                    fee_rate,
                    fee_fixed,
                    slip,
                )
            else:
                pending = t + 1 < n
        equity[t] = cash + units * close[t]
        position[t] = units

    if units != 0.0:
        k = _record(tr, k, entry_i, n - 1, entry_px, close[n - 1], units, entry_fee, 0.0, END)
    return tr, k


@numba.njit(cache=True, nogil=True)
def _all_good(  # pragma: no cover - compiled
    ts: IntArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> bool:
    # Branch-free so LLVM vectorises it; _first_bad_bar finds the bar only when this fails.
    ok = True
    for t in range(len(close)):
        ok &= (open_[t] > 0.0) & (open_[t] < np.inf) & (high[t] > 0.0) & (high[t] < np.inf)
        ok &= (low[t] > 0.0) & (low[t] < np.inf) & (close[t] > 0.0) & (close[t] < np.inf)
    for t in range(1, len(ts)):
        ok &= ts[t] > ts[t - 1]
    return ok


@numba.njit(cache=True, nogil=True)
def _first_bad_bar(  # pragma: no cover - compiled
    ts: IntArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> tuple[int, int]:
    for t in range(len(close)):
        if t > 0 and ts[t] <= ts[t - 1]:
            return t, 2
        o, h, lo, c = open_[t], high[t], low[t], close[t]
        # "not (x > 0)" is also true for NaN.
        if not (o > 0.0 and h > 0.0 and lo > 0.0 and c > 0.0):
            return t, 1
        if o == np.inf or h == np.inf or lo == np.inf or c == np.inf:
            return t, 1
    return -1, 0


def _f64(values: npt.ArrayLike) -> FloatArray:
    # One array type for numba (C-contiguous, writable float64) means one compiled version.
    arr = np.ascontiguousarray(values, dtype=np.float64)
    return arr if arr.flags.writeable else arr.copy()


def first_bad_bar(
    ts: IntArray, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> tuple[int, str]:
    """The first unusable bar as ``(index, problem)``, or ``(-1, "")`` when every bar is fine.

    ``problem`` is ``"price"`` (a missing, infinite or non-positive open/high/low/close) or
    ``"order"`` (a timestamp not after the previous one).
    """
    ts64 = np.ascontiguousarray(ts, dtype=np.int64)
    if not ts64.flags.writeable:
        ts64 = ts64.copy()
    cols = (_f64(open_), _f64(high), _f64(low), _f64(close))
    if _all_good(ts64, *cols):
        return -1, ""
    i, kind = _first_bad_bar(ts64, *cols)
    return int(i), ("", "price", "order")[int(kind)]


def _stop(value: float | None) -> float:
    return math.nan if value is None else float(value)


def simulate(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    target: npt.ArrayLike,
    options: BacktestOptions,
    cash: float | None = None,
) -> KernelRun:
    """Run the fill loop for one symbol; ``cash`` overrides ``options.cash`` (portfolio split).

    ``target`` is the strategy's target position per bar; the direction filter is applied
    here. Prices must be finite and positive (see :func:`first_bad_bar`).
    """
    tgt = np.ascontiguousarray(target, dtype=np.int8)
    if not tgt.flags.writeable:
        tgt = tgt.copy()
    n = len(tgt)
    if not len(open_) == len(high) == len(low) == len(close) == n:
        raise StrategyError(f"got {n} target positions for {len(close)} bars: give one per bar")
    # Outputs are allocated by NumPy, which asks the OS for huge pages on big arrays; filling
    # arrays allocated inside numba would page-fault every 4 KiB and take twice as long.
    equity = np.empty(n)
    position = np.empty(n)
    tr, k = _kernel(
        _f64(open_),
        _f64(high),
        _f64(low),
        _f64(close),
        tgt,
        equity,
        position,
        options.fill is Fill.CLOSE,
        _DIRECTION_CODE[options.direction],
        float(options.size),
        float(options.cash if cash is None else cash),
        float(options.fees_bps) / 1e4,
        float(options.fee_per_order),
        float(options.slippage_bps) / 1e4,
        _stop(options.stop_loss),
        _stop(options.take_profit),
        _stop(options.trailing_stop),
    )
    tr = tr[:k]
    return KernelRun(
        equity=equity,
        position=position,
        entry_bar=tr[:, 0].astype(np.int64),
        exit_bar=tr[:, 1].astype(np.int64),
        entry_price=np.ascontiguousarray(tr[:, 2]),
        exit_price=np.ascontiguousarray(tr[:, 3]),
        units=np.ascontiguousarray(tr[:, 4]),
        pnl=np.ascontiguousarray(tr[:, 5]),
        fees=np.ascontiguousarray(tr[:, 6]),
        reason=tr[:, 7].astype(np.int8),
    )
