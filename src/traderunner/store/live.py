"""Live strategies, their last targets and the stream service's cursors: ``store.live``.

The stream service (``signals/``) reads the live strategies, and after it has published a
bar's candle and signals it records, in one transaction, the bar as handled for its series
(``stream_cursors``) and the target of every live strategy it ran on it (``live_targets``).
A restarted stream therefore resumes after the last bar it finished, compares new targets
with the ones it last published, and repeats at most the one bar it was killed in (whose
messages carry the same ids again, which their readers recognise).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from traderunner.domain.live import LiveStrategy
from traderunner.store.schema import live_strategies as live_table
from traderunner.store.schema import live_targets as targets_table
from traderunner.store.schema import stream_cursors as cursors_table

if TYPE_CHECKING:
    from traderunner.store.store import Store


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert(
    conn: Connection, table: sa.Table, values: Mapping[str, Any], keys: Iterable[str]
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` on SQLite and PostgreSQL.

    The statement is built once per table and set of columns (building one costs far more
    than running it: the trader upserts a position per sleeve and bar).
    """
    keys = tuple(keys)
    cache_key = (conn.dialect.name, table.name, keys, tuple(values))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(table)
        changed = {k: insert.excluded[k] for k in values if k not in keys}
        stmt = _UPSERTS[cache_key] = insert.on_conflict_do_update(index_elements=keys, set_=changed)
    conn.execute(stmt, dict(values))


def _live(row: Any) -> LiveStrategy:
    return LiveStrategy(
        name=row.name,
        strategy=row.strategy,
        symbols=tuple(row.symbols),
        timeframe=row.timeframe,
        params=dict(row.params),
        options=dict(row.options),
        account=row.account,
        paused=bool(row.paused),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class LiveRepository:
    """``store.live``: the live strategies (add, list, remove, pause) and the stream's state."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, live: LiveStrategy) -> LiveStrategy | None:
        """Insert ``live``; None (and nothing written) when its name is taken."""
        now = datetime.now(UTC)
        with self._store.transaction(f"add the live strategy {live.name!r}") as conn:
            found = conn.execute(
                sa.select(live_table.c.name).where(live_table.c.name == live.name)
            ).first()
            if found is not None:
                return None
            conn.execute(
                live_table.insert().values(
                    name=live.name,
                    strategy=live.strategy,
                    params=dict(live.params),
                    symbols=list(live.symbols),
                    timeframe=live.timeframe,
                    options=dict(live.options),
                    account=live.account,
                    paused=live.paused,
                    created_at=now,
                    updated_at=now,
                )
            )
            row = conn.execute(sa.select(live_table).where(live_table.c.name == live.name)).one()
        return _live(row)

    def get(self, name: str) -> LiveStrategy | None:
        with self._store.transaction(f"read the live strategy {name!r}") as conn:
            row = conn.execute(sa.select(live_table).where(live_table.c.name == name)).first()
        return None if row is None else _live(row)

    def list(self, *, timeframe: str | None = None) -> builtins.list[LiveStrategy]:
        """Every live strategy (of ``timeframe``), by name."""
        query = sa.select(live_table).order_by(live_table.c.name)
        if timeframe is not None:
            query = query.where(live_table.c.timeframe == timeframe)
        with self._store.transaction("list the live strategies") as conn:
            rows = conn.execute(query).all()
        return [_live(r) for r in rows]

    def remove(self, name: str) -> bool:
        """Delete the live strategy and its targets; False when there is none of that name.

        Its orders, fills and positions stay: they are the record of what it traded.
        """
        with self._store.transaction(f"remove the live strategy {name!r}") as conn:
            conn.execute(targets_table.delete().where(targets_table.c.live == name))
            done = conn.execute(live_table.delete().where(live_table.c.name == name))
        return bool(done.rowcount)

    def set_paused(self, name: str, paused: bool) -> bool:
        """Pause or resume; False when there is no live strategy of that name."""
        with self._store.transaction(f"pause/resume the live strategy {name!r}") as conn:
            done = conn.execute(
                live_table.update()
                .where(live_table.c.name == name)
                .values(paused=paused, updated_at=datetime.now(UTC))
            )
        return bool(done.rowcount)

    # -- the stream service's durable state ----------------------------------------------------

    def targets(self) -> dict[tuple[str, str], tuple[int, int | None]]:
        """``(live, symbol) -> (target, hold)``: the last target published per sleeve whose
        session has started, and the signal a crossing rule still waits to change from."""
        with self._store.transaction("read the live targets") as conn:
            rows = conn.execute(sa.select(targets_table)).all()
        return {
            (r.live, r.symbol): (int(r.target), None if r.hold is None else int(r.hold))
            for r in rows
        }

    def cursor(self, symbol: str, timeframe: str) -> int | None:
        """The newest bar (ns) the stream finished for this series, or None."""
        c = cursors_table.c
        with self._store.transaction(f"read the stream cursor of {symbol} {timeframe}") as conn:
            value = conn.execute(
                sa.select(c.bar_ns).where((c.symbol == symbol) & (c.timeframe == timeframe))
            ).scalar_one_or_none()
        return None if value is None else int(value)

    def finish_bar(
        self,
        symbol: str,
        timeframe: str,
        bar_ns: int,
        targets: Mapping[str, tuple[int, int | None]],
    ) -> None:
        """Record, in one transaction, that the bar ``bar_ns`` of this series is handled and
        the sleeves' states that changed on it (live strategy name -> (target, hold))."""
        now = datetime.now(UTC)
        with self._store.transaction(f"record the stream's bar of {symbol} {timeframe}") as conn:
            upsert(
                conn,
                cursors_table,
                {"symbol": symbol, "timeframe": timeframe, "bar_ns": bar_ns, "updated_at": now},
                ("symbol", "timeframe"),
            )
            for live, (target, hold) in targets.items():
                upsert(
                    conn,
                    targets_table,
                    {
                        "live": live,
                        "symbol": symbol,
                        "target": int(target),
                        "hold": hold,
                        "bar_ns": bar_ns,
                        "updated_at": now,
                    },
                    ("live", "symbol"),
                )
