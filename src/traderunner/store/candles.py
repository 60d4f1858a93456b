"""Candles in the store: bulk upsert, fast load, and the per-series summary.

Rows hold the bar open time as Unix epoch *seconds*; :class:`CandleArrays` hold nanoseconds.
The conversion is exact (``ns = s * 1_000_000_000``) and :meth:`CandleRepository.upsert`
refuses sub-second timestamps rather than silently rounding them.

Writes are bulk: plain tuples through the driver's ``executemany`` with the dialect's
``INSERT ... ON CONFLICT DO UPDATE`` on SQLite, and ``COPY`` into a temporary table followed by
one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` on PostgreSQL. Reads fetch tuples and build
the NumPy columns in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.store.schema import candles as candles_table
from traderunner.store.schema import series as series_table

if TYPE_CHECKING:
    from traderunner.store.store import Store

NS = 1_000_000_000
# Rows per executemany / COPY batch: bounds the memory of the tuple lists for huge imports.
CHUNK_ROWS = 200_000
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_SYNTHETIC = "synthetic"
MAX_SYMBOL_LENGTH = 64  # the width of the symbol columns
_REFUSED_HINT = "every bar needs low <= high, fix the data (read_candle_file reports the bad row)"


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What the store holds for one ``(symbol, timeframe)``.

    ``first_ns``/``last_ns`` are bar open times (ns since the epoch, UTC); ``version`` starts at
    1 and grows by one with every write to the series; ``source`` is where the bars came from
    (``synthetic`` data is always labelled so; a series mixing sources lists them all,
    ``synthetic`` first, joined by ``+``).
    """

    symbol: str
    timeframe: Timeframe
    source: str
    count: int
    first_ns: int
    last_ns: int
    version: int

    @property
    def first(self) -> datetime:
        """Open time of the first bar, UTC."""
        return datetime.fromtimestamp(self.first_ns // NS, tz=UTC)

    @property
    def last(self) -> datetime:
        """Open time of the last bar, UTC."""
        return datetime.fromtimestamp(self.last_ns // NS, tz=UTC)


class CandleRepository:
    """``store.candles``: upsert, load and list candle series."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # ----------------------------------------------------------------- writes
    def upsert(self, candles: CandleArrays) -> int:
        """Insert or replace ``candles``' bars in one transaction; returns the rows written.

        Bars with a timestamp already stored for the symbol and timeframe are replaced. The
        series row (count, range, source) is refreshed and its version bumped in the same
        transaction, so a failure leaves both candles and series exactly as they were.
        Empty input writes nothing and returns 0. Raises DataRangeError for candles without
        a symbol or timeframe, unordered or sub-second timestamps, or non-finite values.
        """
        symbol, timeframe = _check_candles(candles)
        n = len(candles)
        if n == 0:
            return 0
        ts_s = candles.ts // NS
        source = candles.source.strip() or "unknown"
        action = f"write {n} {timeframe.value} candles for {symbol!r}"
        with self._store.transaction(action, refused_hint=_REFUSED_HINT) as c:
            if c.dialect.name == "postgresql":
                _copy_upsert_postgres(c, symbol, timeframe.value, ts_s, candles)
            else:
                _executemany_upsert(c, symbol, timeframe.value, ts_s, candles)
            _refresh_series(c, symbol, timeframe.value, source, n)
        return n

    # ------------------------------------------------------------------ reads
    def load(
        self,
        symbol: str,
        timeframe: Timeframe,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> CandleArrays:
        """The stored bars of ``symbol`` whose open time is in ``[start_ns, end_ns]``.

        Either bound may be None (unbounded). The result carries the series' source label and
        ``meta={"version": ...}``. An unknown symbol/timeframe raises DataRangeError listing
        what the store holds; a range with no bars raises DataRangeError naming the range
        that exists.
        """
        tf = Timeframe.parse(timeframe)
        if start_ns is not None and end_ns is not None and start_ns > end_ns:
            raise DataRangeError(
                f"start {_iso(start_ns)} is after end {_iso(end_ns)}: swap the two bounds"
            )
        with self._store.transaction(f"read {tf.value} candles for {symbol!r}") as conn:
            # Series first, bars second: a write in between can only pair newer bars with an
            # older version (a cache keyed by it then refetches), never the reverse.
            info = _series_row(conn, symbol, tf.value)
            if info is None:
                raise DataRangeError(_unknown_series_message(conn, symbol, tf))
            columns = _fetch_columns(conn, symbol, tf.value, start_ns, end_ns)
        if len(columns[0]) == 0:
            raise DataRangeError(
                f"no {tf.value} candles for {symbol!r} {_describe_range(start_ns, end_ns)}; "
                f"the store has {_iso(info.first_ns)} to {_iso(info.last_ns)} "
                f"({info.count} bars): choose a period inside it"
            )
        ts, open_, high, low, close, volume = columns
        return CandleArrays(
            ts=ts,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            symbol=symbol,
            timeframe=tf,
            source=info.source,
            meta={"version": info.version},
        )

    def list_series(self) -> list[SeriesInfo]:
        """Every stored series, sorted by symbol then timeframe."""
        with self._store.transaction("list the candle series") as conn:
            rows = conn.execute(
                sa.select(series_table).order_by(series_table.c.symbol, series_table.c.timeframe)
            ).all()
        return [_info(row) for row in rows]

    def series(self, symbol: str, timeframe: Timeframe) -> SeriesInfo | None:
        """The summary of one series, or None when the store has no such bars."""
        tf = Timeframe.parse(timeframe)
        with self._store.transaction(f"read the {tf.value} series of {symbol!r}") as conn:
            return _series_row(conn, symbol, tf.value)

    def last(self, symbol: str, timeframe: Timeframe) -> CandleArrays | None:
        """The newest stored bar of ``symbol`` as a one-bar CandleArrays, or None if none.

        One indexed query (``ORDER BY ts DESC LIMIT 1`` on the primary key, joined to the
        series row for the source label and ``meta={"version": ...}``).
        """
        tf = Timeframe.parse(timeframe)
        with self._store.transaction(f"read the last {tf.value} bar of {symbol!r}") as conn:
            row = conn.execute(_LAST_BAR, {"symbol": symbol, "timeframe": tf.value}).one_or_none()
        if row is None:
            return None
        ts, open_, high, low, close, volume, source, version = tuple(row)
        return CandleArrays(
            ts=np.array([int(ts) * NS], dtype=np.int64),
            open=np.array([open_], dtype=np.float64),
            high=np.array([high], dtype=np.float64),
            low=np.array([low], dtype=np.float64),
            close=np.array([close], dtype=np.float64),
            volume=np.array([volume], dtype=np.float64),
            symbol=symbol,
            timeframe=tf,
            source=source,
            meta={"version": int(version)},
        )


# ---------------------------------------------------------------------- helpers
# Built once: constructing a select costs ~10x what SQLite needs to answer this one.
_LAST_BAR = (
    sa.select(
        candles_table.c.ts,
        *(candles_table.c[name] for name in _PRICE_COLUMNS),
        series_table.c.source,
        series_table.c.version,
    )
    .join(
        series_table,
        (series_table.c.symbol == candles_table.c.symbol)
        & (series_table.c.timeframe == candles_table.c.timeframe),
    )
    .where(
        (candles_table.c.symbol == sa.bindparam("symbol"))
        & (candles_table.c.timeframe == sa.bindparam("timeframe"))
    )
    .order_by(candles_table.c.ts.desc())
    .limit(1)
)


def _check_candles(candles: CandleArrays) -> tuple[str, Timeframe]:
    symbol = candles.symbol.strip()
    if not symbol:
        raise DataRangeError("candles have no symbol: build them with CandleArrays(symbol=...)")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise DataRangeError(
            f"symbol {symbol[:20]!r}... is {len(symbol)} characters long: the store keeps "
            f"symbols of at most {MAX_SYMBOL_LENGTH}"
        )
    if candles.timeframe is None:
        raise DataRangeError(
            f"candles for {symbol!r} have no timeframe: build them with "
            "CandleArrays(timeframe=Timeframe.M5, ...)"
        )
    ts = np.asarray(candles.ts, dtype=np.int64)
    if len(ts) > 1:
        bad = np.flatnonzero(np.diff(ts) <= 0)
        if len(bad):
            i = int(bad[0])
            raise DataRangeError(
                f"candles for {symbol!r} are not in strictly increasing time order at bars "
                f"{i} and {i + 1} ({_iso(int(ts[i]))}, {_iso(int(ts[i + 1]))}): sort them "
                "and drop duplicate timestamps"
            )
    partial = np.flatnonzero(ts % NS)
    if len(partial):
        i = int(partial[0])
        raise DataRangeError(
            f"candles for {symbol!r} have a timestamp with a fraction of a second at bar {i} "
            f"({int(ts[i])} ns): the store keeps whole seconds, round the bar open times"
        )
    for name in _PRICE_COLUMNS:
        values = getattr(candles, name)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            i = int(bad[0])
            raise DataRangeError(
                f"candles for {symbol!r} have {name}={values[i]} at bar {i} "
                f"({_iso(int(ts[i]))}): every value must be a finite number"
            )
    return symbol, candles.timeframe


def _row_chunks(
    symbol: str, timeframe: str, ts_s: np.ndarray, candles: CandleArrays
) -> Iterable[list[tuple[Any, ...]]]:
    for lo in range(0, len(ts_s), CHUNK_ROWS):
        hi = lo + CHUNK_ROWS
        # tolist() turns NumPy scalars into plain Python ints/floats the drivers bind fastest.
        yield list(
            zip(
                repeat(symbol),
                repeat(timeframe),
                ts_s[lo:hi].tolist(),
                candles.open[lo:hi].tolist(),
                candles.high[lo:hi].tolist(),
                candles.low[lo:hi].tolist(),
                candles.close[lo:hi].tolist(),
                candles.volume[lo:hi].tolist(),
                strict=False,  # the repeat()s are endless; the columns are equal length
            )
        )


_ROW_ORDER = ("symbol", "timeframe", "ts", *_PRICE_COLUMNS)
_ROW_DTYPE = np.dtype([("ts", np.int64), *((name, np.float64) for name in _PRICE_COLUMNS)])


def _on_conflict_replace(stmt: Any) -> Any:
    """``ON CONFLICT (symbol, timeframe, ts) DO UPDATE`` the values, only where they differ.

    Re-importing the same file then rewrites nothing (no new row versions, no index churn).
    """
    table = candles_table.c
    changed = sa.or_(*(table[name] != stmt.excluded[name] for name in _PRICE_COLUMNS))
    return stmt.on_conflict_do_update(
        index_elements=["symbol", "timeframe", "ts"],
        set_={name: stmt.excluded[name] for name in _PRICE_COLUMNS},
        where=changed,
    )


def _executemany_upsert(
    conn: Connection, symbol: str, timeframe: str, ts_s: np.ndarray, candles: CandleArrays
) -> None:
    stmt = _on_conflict_replace(sqlite.insert(candles_table))
    compiled = stmt.compile(dialect=conn.dialect)
    # The driver gets positional tuples, so their order must be the statement's bind order.
    assert tuple(compiled.positiontup or ()) == _ROW_ORDER, compiled.positiontup
    sql = str(compiled)
    for rows in _row_chunks(symbol, timeframe, ts_s, candles):
        conn.exec_driver_sql(sql, rows)


_STAGE = "_tr_candles_stage"


def _copy_upsert_postgres(
    conn: Connection, symbol: str, timeframe: str, ts_s: np.ndarray, candles: CandleArrays
) -> None:
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
        "(LIKE candles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql(f"TRUNCATE {_STAGE}")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    columns = ", ".join(_ROW_ORDER)
    try:
        for rows in _row_chunks(symbol, timeframe, ts_s, candles):
            with cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                # Binary COPY with declared types skips text formatting and parsing (~6x).
                copy.set_types(["varchar", "varchar", "int8", *(["float8"] * 5)])
                for row in rows:
                    copy.write_row(row)
    finally:
        cursor.close()
    stage = sa.table(_STAGE, *(sa.column(name) for name in _ROW_ORDER))
    stmt = postgresql.insert(candles_table).from_select(list(_ROW_ORDER), sa.select(stage))
    conn.execute(_on_conflict_replace(stmt))


def _refresh_series(conn: Connection, symbol: str, timeframe: str, source: str, n: int) -> None:
    s = series_table
    key = (s.c.symbol == symbol) & (s.c.timeframe == timeframe)
    # Locks the series row on PostgreSQL so concurrent writers of one series queue up here,
    # and the count below then sees every committed bar. SQLite has one writer anyway.
    old = conn.execute(sa.select(s.c.source).where(key).with_for_update()).scalar_one_or_none()
    c = candles_table
    count, first_ts, last_ts = conn.execute(
        sa.select(sa.func.count(), sa.func.min(c.c.ts), sa.func.max(c.c.ts)).where(
            (c.c.symbol == symbol) & (c.c.timeframe == timeframe)
        )
    ).one()
    label = source[:64]
    if old is not None and int(count) > n:
        # Some earlier bars survived this write: the series now mixes both sources.
        label = _merge_sources(old, source)[:64]
    now = datetime.now(UTC)
    values = {
        "symbol": symbol,
        "timeframe": timeframe,
        "source": label,
        "count": int(count),
        "first_ts": int(first_ts),
        "last_ts": int(last_ts),
        "version": 1,
        "updated_at": now,
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
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
    conn.execute(stmt)


def _merge_sources(old: str, new: str) -> str:
    parts = set(old.split("+")) | set(new.split("+"))
    parts.discard("")
    # ``synthetic`` first, so anything showing the label by its start sees it.
    return "+".join(sorted(parts, key=lambda p: (p != _SYNTHETIC, p)))


def _fetch_columns(
    conn: Connection, symbol: str, timeframe: str, start_ns: int | None, end_ns: int | None
) -> tuple[np.ndarray, ...]:
    c = candles_table
    query = sa.select(c.c.ts, c.c.open, c.c.high, c.c.low, c.c.close, c.c.volume).where(
        (c.c.symbol == symbol) & (c.c.timeframe == timeframe)
    )
    if start_ns is not None:
        query = query.where(c.c.ts >= -(-start_ns // NS))  # ceil: first whole second >= start
    if end_ns is not None:
        query = query.where(c.c.ts <= end_ns // NS)
    query = query.order_by(c.c.ts)
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    if compiled.positiontup is not None:
        bind: Sequence[Any] | Mapping[str, Any] = tuple(params[k] for k in compiled.positiontup)
    else:
        bind = params
    driver = conn.connection.driver_connection
    # psycopg: binary results skip formatting and parsing every float as text (~2x).
    is_pg = conn.dialect.name == "postgresql"
    cursor = driver.cursor(binary=True) if is_pg else driver.cursor()  # type: ignore[union-attr]
    try:
        # The raw cursor skips SQLAlchemy's per-row Row objects: tuples go straight to NumPy.
        cursor.execute(str(compiled), bind)
        table = np.fromiter(cursor, dtype=_ROW_DTYPE)
    finally:
        cursor.close()
    ts = table["ts"] * NS
    return (ts, *(np.ascontiguousarray(table[name]) for name in _PRICE_COLUMNS))


def _info(row: sa.Row[Any]) -> SeriesInfo:
    m = row._mapping  # not row.count: Row is a tuple, and tuple.count is a method
    return SeriesInfo(
        symbol=m["symbol"],
        timeframe=Timeframe.parse(m["timeframe"]),
        source=m["source"],
        count=int(m["count"]),
        first_ns=int(m["first_ts"]) * NS,
        last_ns=int(m["last_ts"]) * NS,
        version=int(m["version"]),
    )


def _series_row(conn: Connection, symbol: str, timeframe: str) -> SeriesInfo | None:
    s = series_table
    row = conn.execute(
        sa.select(s).where((s.c.symbol == symbol) & (s.c.timeframe == timeframe))
    ).one_or_none()
    return None if row is None else _info(row)


def _unknown_series_message(conn: Connection, symbol: str, tf: Timeframe) -> str:
    s = series_table
    rows = conn.execute(sa.select(s.c.symbol, s.c.timeframe).order_by(s.c.symbol, s.c.timeframe))
    available = [f"{sym} ({frame})" for sym, frame in rows]
    shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
    hint = ""
    near = [a for a in available if a.split(" ")[0].lower() == symbol.lower()]
    if near and all(not a.startswith(f"{symbol} ") for a in near):
        hint = f" (did you mean {near[0].split(' ')[0]!r}?)"
    return (
        f"no {tf.value} candles for {symbol!r} in the store{hint}; available: "
        f"{shown or 'none'} — import or fetch data first (traderunner data import / data demo)"
    )


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe_range(start_ns: int | None, end_ns: int | None) -> str:
    if start_ns is None and end_ns is None:
        return "at all"
    if start_ns is None:
        return f"up to {_iso(end_ns or 0)}"
    if end_ns is None:
        return f"from {_iso(start_ns)}"
    return f"between {_iso(start_ns)} and {_iso(end_ns)}"
