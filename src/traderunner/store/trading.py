"""The paper trader's record (``store.trading``): orders, fills, positions, accounts, rejections.

Two writes carry the trader's guarantees:

* :meth:`TradingRepository.record_order` inserts the order of one signal keyed by the
  signal's id (UNIQUE): a redelivered signal finds its order and records nothing, so it never
  trades twice, even when the trader died between this commit and the bus acknowledgement.
  A rejected order is written with its rejection record in the same transaction.
* :meth:`TradingRepository.apply_bar` writes everything one bar did to one sleeve (its fills,
  the orders they filled, the position and the account) in one transaction, and only if the
  sleeve has not stepped that bar yet: a redelivered candle changes nothing.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from traderunner.domain.live import Account, Fill, Order, OrderStatus, Position, Rejection
from traderunner.errors import DataRangeError
from traderunner.store.live import upsert
from traderunner.store.schema import accounts as accounts_table
from traderunner.store.schema import fills as fills_table
from traderunner.store.schema import orders as orders_table
from traderunner.store.schema import positions as positions_table
from traderunner.store.schema import risk_rejections as rejections_table

if TYPE_CHECKING:
    from traderunner.store.store import Store

NS = 1_000_000_000

# Statements the trader runs for every sleeve and bar, built once (building costs more than
# running them).
_P = positions_table.c
_STEPPED = sa.select(_P.bar_ns).where(
    (_P.account == sa.bindparam("a"))
    & (_P.live == sa.bindparam("l"))
    & (_P.symbol == sa.bindparam("s"))
)
_SET_STATUS = (
    orders_table.update()
    .where(orders_table.c.id == sa.bindparam("oid"))
    .values(status=sa.bindparam("st"), reason=sa.bindparam("why"), updated_at=sa.bindparam("now"))
)
_SUMS = sa.select(
    sa.func.sum(_P.start_cash),
    sa.func.sum(_P.cash),
    sa.func.sum(_P.equity),
    sa.func.sum(_P.realized_pnl),
).where(_P.account == sa.bindparam("a"))
_INSERT_ORDER = orders_table.insert()
_ACCOUNT = sa.select(accounts_table).where(accounts_table.c.name == sa.bindparam("a"))


@dataclass(frozen=True, slots=True)
class BarOutcome:
    """What one bar did to one sleeve: its position after the bar, the fills, and the
    orders whose status changed (order id -> (status, reason))."""

    position: Position
    fills: Sequence[Fill] = ()
    orders: dict[int, tuple[OrderStatus, str]] = field(default_factory=dict)


def _order(row: Any) -> Order:
    return Order(
        signal_id=row.signal_id,
        account=row.account,
        live=row.live,
        strategy=row.strategy,
        symbol=row.symbol,
        timeframe=row.timeframe,
        target=int(row.target),
        previous=int(row.previous),
        bar_ns=int(row.bar_ns),
        status=OrderStatus(row.status),
        reason=row.reason,
        created_ns=int(row.created_ns),
        id=int(row.id),
        created_at=row.created_at,
    )


def _fill(row: Any) -> Fill:
    return Fill(
        account=row.account,
        live=row.live,
        symbol=row.symbol,
        bar_ns=int(row.bar_ns),
        seq=int(row.seq),
        side=row.side,
        units=float(row.units),
        price=float(row.price),
        fee=float(row.fee),
        reason=row.reason,
        order_id=None if row.order_id is None else int(row.order_id),
        id=int(row.id),
    )


def _position(row: Any) -> Position:
    return Position(
        account=row.account,
        live=row.live,
        symbol=row.symbol,
        units=float(row.units),
        entry_price=float(row.entry_price),
        cash=float(row.cash),
        start_cash=float(row.start_cash),
        equity=float(row.equity),
        last_price=float(row.last_price),
        realized_pnl=float(row.realized_pnl),
        bar_ns=int(row.bar_ns),
        state=dict(row.state),
    )


def _account(row: Any) -> Account:
    return Account(
        name=row.name,
        start_cash=float(row.start_cash),
        cash=float(row.cash),
        equity=float(row.equity),
        realized_pnl=float(row.realized_pnl),
        day=row.day,
        day_start_equity=float(row.day_start_equity),
    )


def utc_day(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, tz=UTC).strftime("%Y-%m-%d")


class TradingRepository:
    """``store.trading``: what the paper trader did, and what its screens read."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- writes ------------------------------------------------------------------------------

    def record_order(self, order: Order, rejection: Rejection | None = None) -> tuple[Order, bool]:
        """Insert ``order`` unless its signal id is recorded; ``(the stored order, created)``.

        With ``rejection`` (a refused order, status ``rejected``) the rejection record is
        written in the same transaction.
        """
        now = datetime.now(UTC)
        action = f"record the order of signal {order.signal_id}"
        try:
            # Insert first: the common case is a new signal, and the UNIQUE signal id refuses
            # a repeat atomically (two traders racing on one signal included).
            with self._store.transaction(action, refused_hint="already recorded") as conn:
                done = conn.execute(
                    _INSERT_ORDER,
                    {
                        "signal_id": order.signal_id,
                        "account": order.account,
                        "live": order.live,
                        "strategy": order.strategy,
                        "symbol": order.symbol,
                        "timeframe": order.timeframe,
                        "target": order.target,
                        "previous": order.previous,
                        "bar_ns": order.bar_ns,
                        "status": order.status.value,
                        "reason": order.reason,
                        "created_ns": order.created_ns,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                if rejection is not None:
                    conn.execute(
                        rejections_table.insert().values(
                            signal_id=rejection.signal_id,
                            account=rejection.account,
                            live=rejection.live,
                            symbol=rejection.symbol,
                            check=rejection.check,
                            reason=rejection.reason,
                            at=now,
                        )
                    )
                key = done.inserted_primary_key
        except DataRangeError:
            found = self.order(order.signal_id)
            if found is None:  # not a repeat after all: some other constraint
                raise
            return found, False
        assert key is not None
        return dataclasses.replace(order, id=int(key[0]), created_at=now), True

    def apply_bar(self, outcome: BarOutcome) -> bool:
        """Write one sleeve's bar (fills, orders, position, account) in one transaction, unless
        the sleeve already stepped a bar at or after it; True when written."""
        return self.apply_bars([outcome])[0]

    def apply_bars(self, outcomes: Sequence[BarOutcome]) -> builtins.list[bool]:
        """:meth:`apply_bar` for several sleeves (one bar of one series), in one transaction."""
        if not outcomes:
            return []
        now = datetime.now(UTC)
        first = outcomes[0].position
        action = f"record bar {first.bar_ns} of {first.symbol}"
        with self._store.transaction(action) as conn:
            done = [self._apply(conn, outcome, now) for outcome in outcomes]
            for account in sorted(
                {o.position.account for o, ok in zip(outcomes, done, strict=True) if ok}
            ):
                self._update_account(conn, account, first.bar_ns, now)
        return done

    def _apply(self, conn: Connection, outcome: BarOutcome, now: datetime) -> bool:
        pos = outcome.position
        done = conn.execute(
            _STEPPED, {"a": pos.account, "l": pos.live, "s": pos.symbol}
        ).scalar_one_or_none()
        if done is not None and int(done) >= pos.bar_ns:
            return False
        if outcome.fills:
            conn.execute(
                fills_table.insert(),
                [
                    {
                        "order_id": f.order_id,
                        "account": f.account,
                        "live": f.live,
                        "symbol": f.symbol,
                        "bar_ns": f.bar_ns,
                        "seq": f.seq,
                        "side": f.side,
                        "units": f.units,
                        "price": f.price,
                        "fee": f.fee,
                        "reason": f.reason,
                        "created_at": now,
                    }
                    for f in outcome.fills
                ],
            )
        if outcome.orders:
            conn.execute(
                _SET_STATUS,
                [
                    {"oid": oid, "st": status.value, "why": reason, "now": now}
                    for oid, (status, reason) in outcome.orders.items()
                ],
            )
        upsert(
            conn,
            positions_table,
            {
                "account": pos.account,
                "live": pos.live,
                "symbol": pos.symbol,
                "units": pos.units,
                "entry_price": pos.entry_price,
                "cash": pos.cash,
                "start_cash": pos.start_cash,
                "equity": pos.equity,
                "last_price": pos.last_price,
                "realized_pnl": pos.realized_pnl,
                "bar_ns": pos.bar_ns,
                "state": dict(pos.state),
                "updated_at": now,
            },
            ("account", "live", "symbol"),
        )
        return True

    def _update_account(self, conn: Connection, name: str, bar_ns: int, now: datetime) -> None:
        start, cash, equity, realized = conn.execute(_SUMS, {"a": name}).one()
        old = conn.execute(_ACCOUNT, {"a": name}).first()
        day = utc_day(bar_ns)
        if old is None:
            day_start = float(start)
        elif old.day != day:
            day_start = float(old.equity)  # the equity at the close of the previous day
        else:
            day_start = float(old.day_start_equity)
        if old is not None and old.day > day:  # an older bar of another sleeve: keep the day
            day, day_start = old.day, float(old.day_start_equity)
        upsert(
            conn,
            accounts_table,
            {
                "name": name,
                "start_cash": float(start),
                "cash": float(cash),
                "equity": float(equity),
                "realized_pnl": float(realized),
                "day": day,
                "day_start_equity": day_start,
                "updated_at": now,
            },
            ("name",),
        )

    # -- reads -------------------------------------------------------------------------------

    def _by_signal(self, conn: Connection, signal_id: str) -> Order | None:
        row = conn.execute(
            sa.select(orders_table).where(orders_table.c.signal_id == signal_id)
        ).first()
        return None if row is None else _order(row)

    def order(self, signal_id: str) -> Order | None:
        with self._store.transaction(f"read the order of signal {signal_id}") as conn:
            return self._by_signal(conn, signal_id)

    def recorded(self, signal_ids: Collection[str]) -> set[str]:
        """Which of ``signal_ids`` have an order (of any status)."""
        if not signal_ids:
            return set()
        c = orders_table.c
        with self._store.transaction("look up orders by signal") as conn:
            rows = conn.execute(sa.select(c.signal_id).where(c.signal_id.in_(list(signal_ids))))
            return {r[0] for r in rows}

    def open_orders(self, account: str, live: str, symbol: str) -> builtins.list[Order]:
        """The sleeve's orders waiting for a fill, oldest bar first."""
        c = orders_table.c
        query = (
            sa.select(orders_table)
            .where(
                (c.account == account)
                & (c.live == live)
                & (c.symbol == symbol)
                & (c.status == OrderStatus.OPEN.value)
            )
            .order_by(c.bar_ns, c.id)
        )
        with self._store.transaction(f"read the open orders of {live}/{symbol}") as conn:
            return [_order(r) for r in conn.execute(query).all()]

    def orders(
        self, *, account: str | None = None, limit: int | None = None
    ) -> builtins.list[Order]:
        """Orders, oldest first (the newest ``limit`` when given)."""
        c = orders_table.c
        query = sa.select(orders_table)
        if account is not None:
            query = query.where(c.account == account)
        if limit is not None:
            query = query.order_by(c.id.desc()).limit(limit)
        with self._store.transaction("list the orders") as conn:
            rows = conn.execute(query).all()
        return sorted((_order(r) for r in rows), key=lambda o: o.id or 0)

    def count_orders(self) -> int:
        with self._store.transaction("count the orders") as conn:
            found = conn.execute(sa.select(sa.func.count()).select_from(orders_table)).scalar()
        return int(found or 0)

    def fills(self, *, account: str | None = None) -> builtins.list[Fill]:
        c = fills_table.c
        query = sa.select(fills_table).order_by(c.bar_ns, c.live, c.symbol, c.seq)
        if account is not None:
            query = query.where(c.account == account)
        with self._store.transaction("list the fills") as conn:
            return [_fill(r) for r in conn.execute(query).all()]

    def positions(self, *, account: str | None = None) -> builtins.list[Position]:
        c = positions_table.c
        query = sa.select(positions_table).order_by(c.account, c.live, c.symbol)
        if account is not None:
            query = query.where(c.account == account)
        with self._store.transaction("list the positions") as conn:
            return [_position(r) for r in conn.execute(query).all()]

    def position(self, account: str, live: str, symbol: str) -> Position | None:
        c = positions_table.c
        with self._store.transaction(f"read the position {live}/{symbol}") as conn:
            row = conn.execute(
                sa.select(positions_table).where(
                    (c.account == account) & (c.live == live) & (c.symbol == symbol)
                )
            ).first()
        return None if row is None else _position(row)

    def accounts(self) -> builtins.list[Account]:
        with self._store.transaction("list the accounts") as conn:
            rows = conn.execute(sa.select(accounts_table).order_by(accounts_table.c.name)).all()
        return [_account(r) for r in rows]

    def account(self, name: str) -> Account | None:
        a = accounts_table.c
        with self._store.transaction(f"read the account {name!r}") as conn:
            row = conn.execute(sa.select(accounts_table).where(a.name == name)).first()
        return None if row is None else _account(row)

    def rejections(self, *, account: str | None = None) -> builtins.list[Rejection]:
        c = rejections_table.c
        query = sa.select(rejections_table).order_by(c.id)
        if account is not None:
            query = query.where(c.account == account)
        with self._store.transaction("list the risk rejections") as conn:
            rows = conn.execute(query).all()
        return [
            Rejection(r.signal_id, r.account, r.live, r.symbol, r.check, r.reason, r.at)
            for r in rows
        ]
