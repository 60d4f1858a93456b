"""Candles in the store: bulk upsert, fast load, and the per-series summary.

Rows hold the bar open time as Unix epoch *seconds*; :class:`CandleArrays` hold nanoseconds.
The conversion is exact (``ns = s * 1_000_000_000``) and :meth:`CandleRepository.upsert`
refuses sub-second timestamps rather than silently rounding them.

Writes are bulk: plain tuples through the driver's ``executemany`` with the dialect's
``INSERT ... ON CONFLICT`` on SQLite (and for small writes on PostgreSQL), and ``COPY`` into
a temporary table followed by ``INSERT ... SELECT ... ON CONFLICT`` on PostgreSQL. Reads fetch
tuples and build the NumPy columns in one pass.

The series row (count, range, version, generation) is kept up to date by every write without
rescanning the series: see :mod:`traderunner.store.series`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
from traderunner.store.series import (
    SeriesInfo,
    SeriesWrite,
    lock_series,
    series_from_row,
    series_meta,
    series_row,
    unknown_series_message,
    write_series,
)

if TYPE_CHECKING:
    from traderunner.store.store import Store

NS = 1_000_000_000
# Rows per executemany / COPY batch: bounds the memory of the tuple lists for huge imports.
CHUNK_ROWS = 200_000
# PostgreSQL: below this many bars, executemany beats COPY's staging-table round trips.
COPY_FROM_ROWS = 1000
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
MAX_SYMBOL_LENGTH = 64  # the width of the symbol columns
_REFUSED_HINT = "every bar needs low <= high, fix the data (read_candle_file reports the bad row)"


class CandleRepository:
    """``store.candles``: upsert, load, list and delete candle series."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # ----------------------------------------------------------------- writes
    def upsert(self, candles: CandleArrays) -> SeriesWrite:
        """Insert or replace ``candles``' bars in one transaction; says what it did.

        Bars with a timestamp already stored for the symbol and timeframe are replaced. The
        series row (count, range, source, version, generation; see the module docstring) is
        brought up to date in the same transaction, without rescanning the series, so a
        failure leaves both candles and series exactly as they were. Empty input writes
        nothing. Raises DataRangeError for candles without a symbol or timeframe, unordered
        or sub-second timestamps, or non-finite values.
        """
        symbol, timeframe = _check_candles(candles)
        n = len(candles)
        if n == 0:
            info = self.series(symbol, timeframe)
            return SeriesWrite("unchanged", 0, 0, 0, info, info)
        ts_s = candles.ts // NS
        source = candles.source.strip() or "unknown"
        action = f"write {n} {timeframe.value} candles for {symbol!r}"
        with self._store.transaction(action, refused_hint=_REFUSED_HINT) as c:
            return write_series(
                c,
                symbol,
                timeframe,
                ts_s,
                source,
                lambda: _Rows(c, symbol, timeframe.value, ts_s, candles),
            )

    def delete(self, symbol: str, timeframe: Timeframe) -> SeriesInfo:
        """Delete every bar of ``symbol`` at ``timeframe`` and its series row, in one transaction.

        Returns the series as it was. DataRangeError (listing what the store holds) when
        there is no such series; nothing is deleted then.
        """
        tf = Timeframe.parse(timeframe)
        with self._store.transaction(f"delete the {tf.value} candles of {symbol!r}") as c:
            lock_series(c, symbol, tf.value)
            info = series_row(c, symbol, tf.value)
            if info is None:
                raise DataRangeError(unknown_series_message(c, symbol, tf))
            cd, s = candles_table.c, series_table.c
            c.execute(
                candles_table.delete().where((cd.symbol == symbol) & (cd.timeframe == tf.value))
            )
            c.execute(series_table.delete().where((s.symbol == symbol) & (s.timeframe == tf.value)))
        return info

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
        ``meta={"version": ..., "generation": ...}``, read in the same snapshot as the bars.
        An unknown symbol/timeframe raises DataRangeError listing what the store holds; a
        range with no bars raises DataRangeError naming the range that exists.
        """
        tf = Timeframe.parse(timeframe)
        if start_ns is not None and end_ns is not None and start_ns > end_ns:
            raise DataRangeError(
                f"start {_iso(start_ns)} is after end {_iso(end_ns)}: swap the two bounds"
            )
        info, bars = self._read(symbol, tf, start_ns, end_ns)
        if len(bars) == 0:
            raise DataRangeError(
                f"no {tf.value} candles for {symbol!r} {_describe_range(start_ns, end_ns)}; "
                f"the store has {_iso(info.first_ns)} to {_iso(info.last_ns)} "
                f"({info.count} bars): choose a period inside it"
            )
        return bars

    def load_after(
        self, symbol: str, timeframe: Timeframe, after_ns: int | None
    ) -> tuple[SeriesInfo, CandleArrays]:
        """The series row and its bars opening strictly after ``after_ns`` (all if None).

        Both are read in one snapshot, so ``info.count`` counts exactly the bars the series
        had when these were read; the bars may be none. This is how a cached copy is
        extended with what was appended since. DataRangeError for an unknown series.
        """
        tf = Timeframe.parse(timeframe)
        start = None if after_ns is None else int(after_ns) + 1
        return self._read(symbol, tf, start, None)

    def _read(
        self, symbol: str, tf: Timeframe, start_ns: int | None, end_ns: int | None
    ) -> tuple[SeriesInfo, CandleArrays]:
        with self._store.transaction(
            f"read {tf.value} candles for {symbol!r}", snapshot=True
        ) as conn:
            info = series_row(conn, symbol, tf.value)
            if info is None:
                raise DataRangeError(unknown_series_message(conn, symbol, tf))
            columns = _fetch_columns(conn, symbol, tf.value, start_ns, end_ns)
        ts, open_, high, low, close, volume = columns
        return info, CandleArrays(
            ts=ts,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            symbol=symbol,
            timeframe=tf,
            source=info.source,
            meta=series_meta(info),
        )

    def list_series(self) -> list[SeriesInfo]:
        """Every stored series, sorted by symbol then timeframe."""
        with self._store.transaction("list the candle series") as conn:
            rows = conn.execute(
                sa.select(series_table).order_by(series_table.c.symbol, series_table.c.timeframe)
            ).all()
        return [series_from_row(row) for row in rows]

    def series(self, symbol: str, timeframe: Timeframe) -> SeriesInfo | None:
        """The summary of one series, or None when the store has no such bars."""
        tf = Timeframe.parse(timeframe)
        with self._store.transaction(f"read the {tf.value} series of {symbol!r}") as conn:
            return series_row(conn, symbol, tf.value)

    def require(self, symbol: str, timeframe: Timeframe) -> SeriesInfo:
        """The summary of one series; DataRangeError listing what the store holds if none."""
        tf = Timeframe.parse(timeframe)
        with self._store.transaction(f"read the {tf.value} series of {symbol!r}") as conn:
            info = series_row(conn, symbol, tf.value)
            if info is None:
                raise DataRangeError(unknown_series_message(conn, symbol, tf))
        return info

    def last(self, symbol: str, timeframe: Timeframe) -> CandleArrays | None:
        """The newest stored bar of ``symbol`` as a one-bar CandleArrays, or None if none.

        One indexed query (``ORDER BY ts DESC LIMIT 1`` on the primary key, joined to the
        series row for the source label and ``meta={"version": ..., "generation": ...}``).
        """
        tf = Timeframe.parse(timeframe)
        with self._store.transaction(f"read the last {tf.value} bar of {symbol!r}") as conn:
            row = conn.execute(_LAST_BAR, {"symbol": symbol, "timeframe": tf.value}).one_or_none()
        if row is None:
            return None
        ts, open_, high, low, close, volume, source, version, generation = tuple(row)
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
            meta={"version": int(version), "generation": int(generation)},
        )


# ---------------------------------------------------------------------- helpers
# Built once: constructing a select costs ~10x what SQLite needs to answer this one.
_LAST_BAR = (
    sa.select(
        candles_table.c.ts,
        *(candles_table.c[name] for name in _PRICE_COLUMNS),
        series_table.c.source,
        series_table.c.version,
        series_table.c.generation,
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


_STAGE = "_tr_candles_stage"
_KEY = ["symbol", "timeframe", "ts"]


class _Rows:
    """The bars of one write, sent the way the dialect takes them fastest.

    SQLite, and PostgreSQL below ``COPY_FROM_ROWS`` bars: ``executemany`` of tuples (dicts
    for psycopg's named parameters) through the driver's cursor, whose row count sums over
    the rows. Bigger PostgreSQL writes: one binary ``COPY`` into a temporary table, then
    ``INSERT ... SELECT`` from it.
    """

    def __init__(
        self, c: Connection, symbol: str, timeframe: str, ts_s: np.ndarray, candles: CandleArrays
    ) -> None:
        self.c = c
        self.symbol = symbol
        self.timeframe = timeframe
        self.ts_s = ts_s
        self.candles = candles
        self.pg = c.dialect.name == "postgresql"
        self.staged = self.pg and len(ts_s) >= COPY_FROM_ROWS
        self._cursor: Any = None
        if self.staged:
            _copy_to_stage(c, symbol, timeframe, ts_s, candles)

    def insert_new(self, start: int = 0) -> int:
        """Insert bars ``[start, n)`` whose timestamps are not stored; how many that were."""
        insert = postgresql.insert if self.pg else sqlite.insert
        if self.staged:
            stage = _stage()
            source = sa.select(stage)
            if start:
                source = source.where(stage.c.ts >= int(self.ts_s[start]))
            stmt = insert(candles_table).from_select(list(_ROW_ORDER), source)
            return self._count(stmt.on_conflict_do_nothing(index_elements=_KEY))
        stmt = insert(candles_table).on_conflict_do_nothing(index_elements=_KEY)
        return self._executemany(stmt, start, len(self.ts_s))

    def replace_changed(self, stop: int) -> int:
        """Write bars ``[0, stop)`` that are new or differ from the stored ones; how many."""
        if self.staged:
            stage = _stage()
            source = sa.select(stage).where(stage.c.ts <= int(self.ts_s[stop - 1]))
            stmt = postgresql.insert(candles_table).from_select(list(_ROW_ORDER), source)
            return self._count(_on_conflict_replace(stmt))
        insert = postgresql.insert if self.pg else sqlite.insert
        return self._executemany(_on_conflict_replace(insert(candles_table)), 0, stop)

    def _count(self, stmt: Any) -> int:
        """Run one statement; the rows it wrote (SQLAlchemy keeps INSERT counts only if asked)."""
        return int(self.c.execute(stmt.execution_options(preserve_rowcount=True)).rowcount)

    def _executemany(self, stmt: Any, start: int, stop: int) -> int:
        compiled = stmt.compile(dialect=self.c.dialect, column_keys=list(_ROW_ORDER))
        sql = str(compiled)
        if self.pg:
            # psycopg takes named parameters; the statement's names are the column names.
            assert set(compiled.binds) == set(_ROW_ORDER), sorted(compiled.binds)
        else:
            # The driver gets positional tuples, so their order must be the statement's.
            assert tuple(compiled.positiontup or ()) == _ROW_ORDER, compiled.positiontup
        if self._cursor is None:
            self._cursor = self.c.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor = self._cursor
        ts_s, candles = self.ts_s, self.candles
        if (start, stop) != (0, len(ts_s)):
            ts_s, candles = ts_s[start:stop], candles.slice(start, stop)
        total = 0
        for chunk in _row_chunks(self.symbol, self.timeframe, ts_s, candles):
            if self.pg:
                cursor.executemany(sql, [dict(zip(_ROW_ORDER, row, strict=True)) for row in chunk])
            else:
                cursor.executemany(sql, chunk)
            total += max(int(cursor.rowcount), 0)
        return total

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None


def _stage() -> Any:
    return sa.table(_STAGE, *(sa.column(name) for name in _ROW_ORDER))


def _copy_to_stage(
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
