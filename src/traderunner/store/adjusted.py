"""Adjusted closes of daily bars (EODHD's ``adjusted_close``), beside the raw candles.

EODHD's end-of-day OHLC are raw and its ``adjusted_close`` is adjusted for splits and
dividends; the store keeps both so a backtest can choose (``marketdata.adjust``). Rows are keyed
by (symbol, ts) with ts in whole seconds like the candles table; the API here speaks int64
nanoseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from traderunner.store.schema import adjusted_closes as table

if TYPE_CHECKING:
    from traderunner.store.store import Store

NS = 1_000_000_000


class AdjustedCloseRepository:
    """``store.adjusted``: write and read the adjusted closes of daily bars."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert(self, symbol: str, ts_ns: np.ndarray, values: np.ndarray) -> int:
        """Insert or replace the adjusted closes of ``symbol``'s daily bars; rows written."""
        if len(ts_ns) != len(values):
            raise ValueError("ts_ns and values must have the same length")
        keep = np.isfinite(values)
        rows = [
            {"symbol": symbol, "ts": int(t) // NS, "adjusted_close": float(v)}
            for t, v in zip(ts_ns[keep], values[keep], strict=True)
        ]
        if not rows:
            return 0
        with self._store.transaction(f"write adjusted closes of {symbol!r}") as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["symbol", "ts"],
                set_={"adjusted_close": stmt.excluded["adjusted_close"]},
            )
            conn.execute(stmt, rows)
        return len(rows)

    def load(
        self, symbol: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ts_ns, adjusted_close) of ``symbol`` in ``[start_ns, end_ns]``, oldest first."""
        query = sa.select(table.c.ts, table.c.adjusted_close).where(table.c.symbol == symbol)
        if start_ns is not None:
            query = query.where(table.c.ts >= -(-start_ns // NS))
        if end_ns is not None:
            query = query.where(table.c.ts <= end_ns // NS)
        with self._store.transaction(f"read adjusted closes of {symbol!r}") as conn:
            rows = conn.execute(query.order_by(table.c.ts)).all()
        ts = np.array([r[0] for r in rows], dtype=np.int64) * NS
        return ts, np.array([r[1] for r in rows], dtype=np.float64)

    def delete(self, symbol: str) -> int:
        """Forget ``symbol``'s adjusted closes (with its daily series); rows deleted."""
        with self._store.transaction(f"delete adjusted closes of {symbol!r}") as conn:
            return int(conn.execute(table.delete().where(table.c.symbol == symbol)).rowcount)
