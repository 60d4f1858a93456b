"""The "before" of benchmarks/store.py: the write and series-cache paths as they were before
appends became incremental (traderunner main at b56a3b5), kept runnable so that both are
measured in the same run, on the same database, alternately.

``old_upsert`` is that ``CandleRepository.upsert``, statement for statement: the bulk upsert
(``executemany`` on SQLite; on PostgreSQL, for any size, a temporary staging table, binary
``COPY`` and ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``), then ``SELECT ... FOR UPDATE``
of the series row, a ``COUNT/MIN/MAX`` over every bar of the series, and the series upsert
with ``version + 1``, in one transaction. The only addition is the ``generation`` column the
new schema requires (written unchanged), which costs nothing measurable.

``OldSeriesCache`` is that ``MarketCache.series``: the whole series cached under a key made
from ``series.version``, which every write bumped, so the read after an append always missed
and loaded the whole series from the store. Values use the current codec (rows instead of
columns: the same 48 bytes a bar).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from traderunner.cache import codec
from traderunner.domain import CandleArrays, Timeframe
from traderunner.store import Store
from traderunner.store.candles import _ROW_ORDER, _on_conflict_replace, _row_chunks
from traderunner.store.schema import candles as candles_table
from traderunner.store.schema import series as series_table

NS = 1_000_000_000
_STAGE = "_tr_old_stage"


def old_upsert(store: Store, candles: CandleArrays) -> int:
    """main's ``store.candles.upsert`` (see the module docstring); the rows written."""
    symbol, timeframe = candles.symbol, Timeframe.parse(candles.timeframe or "M5").value
    ts_s = candles.ts // NS
    with store.engine.begin() as c:
        if c.dialect.name == "postgresql":
            _copy_upsert(c, symbol, timeframe, ts_s, candles)
        else:
            stmt = _on_conflict_replace(sqlite.insert(candles_table))
            sql = str(stmt.compile(dialect=c.dialect))
            for rows in _row_chunks(symbol, timeframe, ts_s, candles):
                c.exec_driver_sql(sql, rows)
        _refresh_series(c, symbol, timeframe, candles.source or "unknown")
    return len(candles)


def _copy_upsert(c: Any, symbol: str, timeframe: str, ts_s: Any, candles: CandleArrays) -> None:
    c.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
        "(LIKE candles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    c.exec_driver_sql(f"TRUNCATE {_STAGE}")
    cursor = c.connection.driver_connection.cursor()
    try:
        for rows in _row_chunks(symbol, timeframe, ts_s, candles):
            with cursor.copy(
                f"COPY {_STAGE} ({', '.join(_ROW_ORDER)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["varchar", "varchar", "int8", *(["float8"] * 5)])
                for row in rows:
                    copy.write_row(row)
    finally:
        cursor.close()
    stage = sa.table(_STAGE, *(sa.column(name) for name in _ROW_ORDER))
    stmt = postgresql.insert(candles_table).from_select(list(_ROW_ORDER), sa.select(stage))
    c.execute(_on_conflict_replace(stmt))


def _refresh_series(c: Any, symbol: str, timeframe: str, source: str) -> None:
    s = series_table
    key = (s.c.symbol == symbol) & (s.c.timeframe == timeframe)
    old = c.execute(
        sa.select(s.c.source, s.c.generation).where(key).with_for_update()
    ).one_or_none()
    cd = candles_table.c
    count, first_ts, last_ts = c.execute(
        sa.select(sa.func.count(), sa.func.min(cd.ts), sa.func.max(cd.ts)).where(
            (cd.symbol == symbol) & (cd.timeframe == timeframe)
        )
    ).one()
    values = {
        "symbol": symbol,
        "timeframe": timeframe,
        "source": source[:64],
        "count": int(count),
        "first_ts": int(first_ts),
        "last_ts": int(last_ts),
        "version": 1,
        "generation": 1 if old is None else int(old[1]),
        "updated_at": datetime.now(UTC),
    }
    insert = postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(s).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["symbol", "timeframe"],
        set_={
            "source": stmt.excluded.source,
            "count": stmt.excluded.count,
            "first_ts": stmt.excluded.first_ts,
            "last_ts": stmt.excluded.last_ts,
            "version": s.c.version + 1,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    c.execute(stmt)


class OldSeriesCache:
    """main's series read path (see the module docstring), counting what it moves."""

    def __init__(self, client: redis.Redis, store: Store, prefix: str, ttl: int = 3600) -> None:
        self.r = client
        self.store = store
        self.prefix = prefix
        self.ttl = ttl
        self.counts = {"hits": 0, "misses": 0, "bytes_read": 0, "bytes_written": 0}
        self.store_bars = 0

    def series(self, symbol: str, tf: Timeframe, start_ns: int | None = None) -> CandleArrays:
        info = self.store.candles.series(symbol, tf)
        assert info is not None
        key = f"{self.prefix}series:{symbol}:{tf.value}:v{info.version}"
        raw = self.r.get(key)
        if raw is not None:
            self.counts["hits"] += 1
            self.counts["bytes_read"] += len(raw)
            columns = codec.decode_series(raw, 0)
            full = CandleArrays(**columns, symbol=symbol, timeframe=tf, source=info.source)
        else:
            self.counts["misses"] += 1
            full = self.store.candles.load(symbol, tf)
            self.store_bars += len(full)
            value = codec.encode_series(full, 0)
            self.counts["bytes_written"] += len(value)
            self.r.set(key, value, ex=self.ttl)
        return full if start_ns is None else full.between(start_ns, None)
