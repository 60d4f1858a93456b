"""The broker seam: what fills the trader's orders. :class:`PaperBroker` fills them with the
engine's own per-bar step (``engine.step.Stepper``), so paper trading and backtests agree by
construction: fees, slippage, sizing, whole units, stops and fill timing are the same code.

An order is a sleeve's new *target position* from a bar on (what a signal says). For each
new bar of a sleeve the trader calls :meth:`Broker.on_bar` with the sleeve's position after
the previous bar (None for its first bar) and its open orders up to this bar; the broker
returns the position after this bar, its fills and the orders whose status changed, which
the trader records in one transaction (``store.trading.apply_bar``).

Fill timing is the engine's: with ``fill=next_open`` (the default) an order recorded on bar t
fills at the open of bar t+1 (so it stays ``open`` across one bar); with ``fill=close`` it
fills at bar t's close. Stops are checked on every bar's high and low before that bar's
target is acted on. An order the engine had nothing to do for (the direction filter, no units
affordable, the position already there) ends ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from traderunner.domain.live import (
    CandleMessage,
    Fill,
    LiveStrategy,
    Order,
    OrderStatus,
    Position,
)
from traderunner.engine.options import BacktestOptions
from traderunner.engine.step import Stepper
from traderunner.store.trading import BarOutcome


class Broker(Protocol):
    """Fills a sleeve's orders on its bars (see the module docstring)."""

    def on_bar(
        self,
        live: LiveStrategy,
        bar: CandleMessage,
        position: Position | None,
        orders: Sequence[Order],
    ) -> BarOutcome: ...


def sleeve_cash(live: LiveStrategy) -> float:
    """A sleeve's starting cash: the strategy's cash split over its symbols, as a backtest."""
    options = BacktestOptions.from_kwargs(**dict(live.options))
    return options.cash / max(len(live.symbols), 1)


class PaperBroker:
    """Simulated fills through the engine's Stepper; the Stepper's state travels in the
    position (``state["stepper"]``), so any trader process continues any sleeve."""

    def on_bar(
        self,
        live: LiveStrategy,
        bar: CandleMessage,
        position: Position | None,
        orders: Sequence[Order],
    ) -> BarOutcome:
        if position is None:
            start_cash = sleeve_cash(live)
            stepper = Stepper(dict(live.options), cash=start_cash)
            target, realized, last_bar = 0, 0.0, -1
        else:
            start_cash = position.start_cash
            stepper = Stepper.from_dict(position.state["stepper"])
            target = int(position.state.get("target", 0))
            realized = position.realized_pnl
            last_bar = position.bar_ns
        waiting = [o for o in orders if o.bar_ns <= last_bar]  # seen before: fill at this open
        new = [o for o in orders if last_bar < o.bar_ns <= bar.ts_ns]
        if new:
            target = new[-1].target
        out = stepper.on_bar(bar.ts_ns, bar.open, bar.high, bar.low, bar.close, target)
        by_signal = [f for f in out.fills if f.reason == "signal"]
        statuses: dict[int, tuple[OrderStatus, str]] = {}
        close_fill = stepper.options.fill.value == "close"
        # The order a signal fill belongs to: the waiting one at an open, this bar's at a close.
        filled_by = (new[-1:] if close_fill else waiting[-1:]) if by_signal else []
        for o in waiting + new:
            assert o.id is not None
            if o in filled_by:
                statuses[o.id] = (OrderStatus.FILLED, "")
            elif o in new and not close_fill and stepper.pending and o is new[-1]:
                continue  # fills at the next bar's open
            elif o in new[:-1] or o in waiting[:-1]:
                statuses[o.id] = (OrderStatus.UNCHANGED, "superseded by a later order")
            else:
                statuses[o.id] = (OrderStatus.UNCHANGED, "nothing to trade")
        owner = filled_by[0].id if filled_by else None
        fills = [
            Fill(
                account=live.account,
                live=live.name,
                symbol=bar.symbol,
                bar_ns=bar.ts_ns,
                seq=i,
                side=f.side,
                units=f.units,
                price=f.price,
                fee=f.fee,
                reason=f.reason,
                order_id=owner if f.reason == "signal" else None,
            )
            for i, f in enumerate(out.fills)
        ]
        realized += sum(t.pnl for t in out.trades)
        pos = Position(
            account=live.account,
            live=live.name,
            symbol=bar.symbol,
            units=stepper.units,
            entry_price=stepper.entry_price or 0.0,
            cash=stepper.cash,
            start_cash=start_cash,
            equity=out.equity,
            last_price=bar.close,
            realized_pnl=realized,
            bar_ns=bar.ts_ns,
            state={
                "stepper": stepper.to_dict(),
                "target": target,
                "open_orders": bool(stepper.pending),
            },
        )
        return BarOutcome(position=pos, fills=fills, orders=statuses)
