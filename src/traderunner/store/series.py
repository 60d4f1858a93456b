"""The series row: what the store holds for one ``(symbol, timeframe)``, kept up to date by
every write without rescanning the series.

A write (:func:`write_series`, inside the upsert's transaction) takes the series' lock (SQLite
``BEGIN IMMEDIATE``; on PostgreSQL a transaction-level advisory lock per series) and reads
the row, then splits its bars at the stored last one. Bars after it are all new: ``INSERT ...
ON CONFLICT DO NOTHING``. Bars at or before it go through one ``ON CONFLICT DO UPDATE ...
WHERE`` (the values differ) pass, whose row count is the new plus the changed ones, and the
stored bars of their time range are counted before and after it to tell the two apart. The
new count, range, version and generation follow from those counts and the row as it was: so
appending one bar costs a few index lookups whatever the size of the series, and a rewrite
costs what it writes.

Version and generation (see :class:`SeriesInfo`): the *version* grows with every write that
changed a bar; the *generation* changes only when a write replaced stored bars or inserted
bars before the last one. Within one generation the series therefore only ever grows at its
end, and bars ``[0, count)`` of a generation never change: the series cache keys its copies by
the generation and extends them on append.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from traderunner.domain.timeframe import Timeframe
from traderunner.store.schema import candles as candles_table
from traderunner.store.schema import series as series_table

NS = 1_000_000_000
_SYNTHETIC = "synthetic"
# The two-key advisory lock space of series writers on PostgreSQL ("tr" "se"); the single
# 64-bit key space (the migration lock) does not overlap it.
_PG_SERIES_LOCKS = 0x7472_7365

WriteKind = Literal["new", "append", "rewrite", "unchanged"]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What the store holds for one ``(symbol, timeframe)``.

    ``first_ns``/``last_ns`` are bar open times (ns since the epoch, UTC); ``source`` is where
    the bars came from (``synthetic`` data is always labelled so; a series mixing sources
    lists them all, ``synthetic`` first, joined by ``+``).

    ``version`` starts at 1 and grows by one with every write that changed the series (new
    bars or new values; writing bars identical to the stored ones changes nothing).
    ``generation`` is an opaque number that changes only when stored bars were replaced by
    different values or bars were inserted before the last one (and is new for every series
    created, even one deleted and imported again): between two changes of the generation the
    series only grows at its end. It is what keys the series cache.
    """

    symbol: str
    timeframe: Timeframe
    source: str
    count: int
    first_ns: int
    last_ns: int
    version: int
    generation: int

    @property
    def first(self) -> datetime:
        """Open time of the first bar, UTC."""
        return datetime.fromtimestamp(self.first_ns // NS, tz=UTC)

    @property
    def last(self) -> datetime:
        """Open time of the last bar, UTC."""
        return datetime.fromtimestamp(self.last_ns // NS, tz=UTC)


@dataclass(frozen=True, slots=True)
class SeriesWrite:
    """What one :meth:`CandleRepository.upsert` did to its series.

    ``kind``: ``new`` (the series did not exist), ``append`` (every new bar is after the last
    stored one and no stored bar changed: same generation), ``rewrite`` (stored bars changed
    or bars were inserted before the last one: a new generation), ``unchanged`` (every bar
    was already stored with these values: the series row is untouched).
    ``bars`` were given (all are stored as given), ``inserted`` of them had new timestamps,
    ``changed`` replaced stored bars with different values. ``previous`` is the series before
    the write (None when new), ``series`` after it (None only for an empty write to a series
    that does not exist).
    """

    kind: WriteKind
    bars: int
    inserted: int
    changed: int
    previous: SeriesInfo | None
    series: SeriesInfo | None

    @property
    def appended(self) -> int:
        """Bars added after the previous last bar (0 unless ``kind`` is new or append)."""
        if self.kind == "new":
            return self.inserted
        return self.inserted if self.kind == "append" else 0


def series_meta(info: SeriesInfo) -> dict[str, Any]:
    """The ``meta`` of bars read from the series ``info``: its version and generation."""
    return {"version": info.version, "generation": info.generation}


class BarWriter(Protocol):
    """Sends the bars of one write (``store/candles.py`` has the dialects' fast paths)."""

    def insert_new(self, start: int = 0) -> int:
        """Insert bars ``[start, n)`` whose timestamps are not stored; how many that were."""
        ...

    def replace_changed(self, stop: int) -> int:
        """Write bars ``[0, stop)`` that are new or differ from the stored ones; how many."""
        ...

    def close(self) -> None: ...


def write_series(
    c: Connection,
    symbol: str,
    tf: Timeframe,
    ts_s: np.ndarray,
    source: str,
    bars: Callable[[], BarWriter],
) -> SeriesWrite:
    """Write bars opening at ``ts_s`` (epoch s, increasing) and bring the series row up to
    date, inside the caller's transaction (see the module docstring); ``bars()`` makes the
    writer of those bars, once the series is locked and its row read."""
    n = len(ts_s)
    timeframe = tf.value
    lock_series(c, symbol, timeframe)
    previous = series_row(c, symbol, timeframe)  # current: we hold the series' lock
    # Bars [0, split) are at or before the stored last one, bars [split, n) after it.
    split = 0 if previous is None else int(np.searchsorted(ts_s, previous.last_ns // NS, "right"))
    rows = bars()
    inserted = changed = 0
    try:
        if split:
            # Only these can replace anything. One upsert pass writes the new and the
            # changed ones (its row count is both); counting the stored bars of their range
            # before and after it tells the two apart. The range, never the whole series.
            lo, hi = int(ts_s[0]), int(ts_s[split - 1])
            before = _count_range(c, symbol, timeframe, lo, hi)
            written = rows.replace_changed(split)
            inserted = _count_range(c, symbol, timeframe, lo, hi) - before
            changed = written - inserted
        if split < n:
            # After the last stored bar: every one is new (DO NOTHING guards a row written
            # without a series row, by hand).
            inserted += rows.insert_new(split)
    finally:
        rows.close()
    now = datetime.now(UTC)
    s = series_table
    if previous is None:
        count, first_s, last_s = n, int(ts_s[0]), int(ts_s[-1])
        if inserted != n:  # bars stored without a series row (written by hand): count them
            count, first_s, last_s = _recount(c, symbol, timeframe)
        info = SeriesInfo(
            symbol, tf, source[:64], count, first_s * NS, last_s * NS, 1, _new_generation(None)
        )
        c.execute(s.insert().values(**_row_values(info), updated_at=now))
        return SeriesWrite("new", n, inserted, 0, None, info)
    tail = n - split
    if inserted == 0 and changed == 0:
        return SeriesWrite("unchanged", n, 0, 0, previous, previous)
    count = previous.count + inserted
    # Some stored bars are not from this write: the series now mixes both sources.
    label = source[:64] if count == n else _merge_sources(previous.source, source)[:64]
    rewrite = changed > 0 or inserted > tail
    info = SeriesInfo(
        symbol,
        tf,
        label,
        count,
        min(previous.first_ns, int(ts_s[0]) * NS),
        max(previous.last_ns, int(ts_s[-1]) * NS),
        previous.version + 1,
        _new_generation(previous.generation) if rewrite else previous.generation,
    )
    values = _row_values(info)
    del values["symbol"], values["timeframe"]
    c.execute(
        s.update()
        .where((s.c.symbol == symbol) & (s.c.timeframe == timeframe))
        .values(**values, updated_at=now)
    )
    return SeriesWrite("rewrite" if rewrite else "append", n, inserted, changed, previous, info)


def _row_values(info: SeriesInfo) -> dict[str, Any]:
    return {
        "symbol": info.symbol,
        "timeframe": info.timeframe.value,
        "source": info.source,
        "count": info.count,
        "first_ts": info.first_ns // NS,
        "last_ts": info.last_ns // NS,
        "version": info.version,
        "generation": info.generation,
    }


def _new_generation(old: int | None) -> int:
    # Random, not old + 1: a series deleted and imported again must not reuse a generation
    # whose cached copy may still exist somewhere. 53 bits stay exact in JSON numbers.
    while True:
        found = secrets.randbits(53)
        if found != old and found > 0:
            return found


def lock_series(c: Connection, symbol: str, timeframe: str) -> None:
    """Writers of one series queue up here, before anything is read, so that the series row
    each writer reads is the one the previous writer committed.

    SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock now (the driver would begin
    only at the first INSERT, after the read). PostgreSQL: a transaction-level advisory lock
    per series; a row lock would not do, a new series has no row to lock.
    """
    if c.dialect.name == "sqlite":
        c.exec_driver_sql("BEGIN IMMEDIATE")
        return
    if c.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"{symbol}\0{timeframe}".encode(), digest_size=4).digest()
    key = int.from_bytes(digest, "big", signed=True)
    c.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(%(space)s, %(key)s)",
        {"space": _PG_SERIES_LOCKS, "key": key},
    )


def _count_range(c: Connection, symbol: str, timeframe: str, lo: int, hi: int) -> int:
    cd = candles_table.c
    return int(
        c.execute(
            sa.select(sa.func.count()).where(
                (cd.symbol == symbol) & (cd.timeframe == timeframe) & (cd.ts >= lo) & (cd.ts <= hi)
            )
        ).scalar_one()
    )


def _recount(c: Connection, symbol: str, timeframe: str) -> tuple[int, int, int]:
    cd = candles_table.c
    count, first_ts, last_ts = c.execute(
        sa.select(sa.func.count(), sa.func.min(cd.ts), sa.func.max(cd.ts)).where(
            (cd.symbol == symbol) & (cd.timeframe == timeframe)
        )
    ).one()
    return int(count), int(first_ts), int(last_ts)


def _merge_sources(old: str, new: str) -> str:
    parts = set(old.split("+")) | set(new.split("+"))
    parts.discard("")
    # ``synthetic`` first, so anything showing the label by its start sees it.
    return "+".join(sorted(parts, key=lambda p: (p != _SYNTHETIC, p)))


def series_from_row(row: sa.Row[Any]) -> SeriesInfo:
    m = row._mapping  # not row.count: Row is a tuple, and tuple.count is a method
    return SeriesInfo(
        symbol=m["symbol"],
        timeframe=Timeframe.parse(m["timeframe"]),
        source=m["source"],
        count=int(m["count"]),
        first_ns=int(m["first_ts"]) * NS,
        last_ns=int(m["last_ts"]) * NS,
        version=int(m["version"]),
        generation=int(m["generation"]),
    )


def series_row(conn: Connection, symbol: str, timeframe: str) -> SeriesInfo | None:
    s = series_table
    row = conn.execute(
        sa.select(s).where((s.c.symbol == symbol) & (s.c.timeframe == timeframe))
    ).one_or_none()
    return None if row is None else series_from_row(row)


def unknown_series_message(conn: Connection, symbol: str, tf: Timeframe) -> str:
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
