"""Candle series in the market cache: read through the copy held in process, Redis and the store,
extended on append (see the ``market`` module docstring, *Series* and *Appends*).

:class:`SeriesReads` is the series half of :class:`~traderunner.cache.MarketCache`, kept in
its own module for size; it uses the cache's Redis read/write helpers, counters and filler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import redis

from traderunner.cache import codec
from traderunner.cache.clients import Problems, error_kind
from traderunner.cache.flight import SERIES_FILL, Filler, Loaded
from traderunner.cache.held import HeldSeries
from traderunner.cache.local import LocalTier
from traderunner.cache.stats import Counters
from traderunner.domain.candles import COLUMNS, CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError
from traderunner.redisdb.keys import Keys
from traderunner.store import SeriesInfo, SeriesWrite, Store
from traderunner.store.series import series_meta

DOWN_BACKOFF = 0.5  # after an unreachable server, skip it this long


class SeriesReads:
    """``series``, ``append`` and ``forget`` of :class:`~traderunner.cache.MarketCache`."""

    keys: Keys
    store: Store
    series_ttl: int
    _r: redis.Redis
    _local: LocalTier | None
    _held: HeldSeries | None
    _counters: Counters
    _problems: Problems
    _filler: Filler
    _append_script: Any
    _down_until: float

    if TYPE_CHECKING:  # provided by MarketCache

        def put_latest(self, candles: CandleArrays) -> None: ...

        def _get(
            self, kind: str, key: str, *, with_ttl: bool
        ) -> tuple[bytes | None, int] | None: ...

        def _from_store(self, kind: str, load: Callable[[], Loaded]) -> Loaded: ...

        def _discard(self, key: str) -> None: ...

        def _failed(self, kind: str, what: str, detail: str) -> None: ...

    def series(
        self,
        symbol: str,
        timeframe: Timeframe,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> CandleArrays:
        """The stored bars of ``symbol`` in ``[start_ns, end_ns]``, as store.candles.load.

        The same bars, source label, ``meta={"version": ..., "generation": ...}`` and
        DataRangeErrors as the store; the full series comes from the cache (held in process,
        or Redis, extended from the store with what was appended since) when it can.
        """
        tf = Timeframe.parse(timeframe)
        info = self.store.candles.series(symbol, tf)
        if info is None or (start_ns is not None and end_ns is not None and start_ns > end_ns):
            # Let the store say what is wrong, in its own words.
            return self.store.candles.load(symbol, tf, start_ns, end_ns)
        full = self._full_series(info)
        window = full if start_ns is None and end_ns is None else full.between(start_ns, end_ns)
        if len(window) == 0:
            if len(full) == 0:  # cannot happen for a stored series; let the store explain
                return self.store.candles.load(symbol, tf, start_ns, end_ns)
            raise DataRangeError(
                f"no {tf.value} candles for {symbol!r} in the requested period; the store has "
                f"{_iso(int(full.ts[0]))} to {_iso(int(full.ts[-1]))} ({len(full)} bars): "
                "choose a period inside it"
            )
        return window

    def _full_series(self, info: SeriesInfo, *, retry: bool = True) -> CandleArrays:
        """All bars of ``info``'s series, at least ``info.count`` of them (see the module
        docstring for the order of the tiers)."""
        symbol, tf, gen = info.symbol, info.timeframe.value, info.generation
        key = self.keys.candle_series(symbol, tf, gen)
        held = self._held
        if held is not None:
            columns, have = held.get(symbol, tf, gen, info.count)
            if have >= info.count:
                self._counters.add("series", "local_hits")
                return _arrays(columns, info)
            if have:
                rest = self._get_range(key, have, info.count)
                if rest is None:
                    return self._extend_from_store(info, key, columns, retry=retry)
                self._counters.add("series", "hits")
                added = codec.decode_rows(rest)
                if held.extend(symbol, tf, gen, have, added):
                    grown, now = held.get(symbol, tf, gen, info.count)
                    if now >= info.count:
                        return _arrays(grown, info)
                return _arrays(_joined(columns, added), info)
        got = self._get("series", key, with_ttl=False)
        if got is None:  # the server is down: the store answers, nothing is cached in Redis
            snap, full = self._from_store("series", lambda: self._load_series(info))[0]
            if held is not None and snap.generation == gen:
                held.hold(symbol, tf, gen, _columns(full))
            return full
        raw, pttl = got
        bad = pttl == -3
        if raw is not None:
            try:
                columns = codec.decode_series(raw, gen)
            except codec.CorruptValueError as exc:
                self._failed("series", "corrupt", f"{key}: {exc}")
                bad = True
            else:
                self._counters.add("series", "hits")
                self._counters.add("series", "bytes_read", len(raw))
                self._problems.recovered("corrupt", "wrongtype")
                if held is not None:
                    held.hold(symbol, tf, gen, columns)
                if len(columns["ts"]) >= info.count:
                    return _arrays({n: c[: info.count] for n, c in columns.items()}, info)
                return self._extend_from_store(info, key, columns, retry=retry)
        if not bad:
            self._counters.add("series", "misses")
        snap, full = self._filler.fill(
            "series",
            key,
            # Another process loaded it: its snapshot may be older or newer than ``info``.
            lambda value: (None, _arrays(codec.decode_series(value, gen), info)),
            lambda: self._load_series(info),
            SERIES_FILL,
            bad,
        )
        if snap is not None and snap.generation != gen:
            return full  # rewritten since ``info`` was read: newer bars, not cached here
        columns = _columns(full)
        if held is not None:
            held.hold(symbol, tf, gen, columns)
        if len(full) < info.count:
            return self._extend_from_store(info, key, columns, retry=retry)
        # Bars [0, count) of a generation are exactly the series at ``info``.
        return _arrays({n: c[: info.count] for n, c in columns.items()}, info)

    def _load_series(self, info: SeriesInfo) -> Loaded:
        snap, full = self.store.candles.load_after(info.symbol, info.timeframe, None)
        # Bars and row from one snapshot. Rewritten since the caller read the row: these bars
        # belong to another generation, so they are returned but not cached under this key.
        same = snap.generation == info.generation
        raw = codec.encode_series(full, snap.generation) if same else None
        return (snap, full), raw, self.series_ttl

    def _extend_from_store(
        self, info: SeriesInfo, key: str, columns: dict[str, Any], *, retry: bool
    ) -> CandleArrays:
        """``columns`` (the first bars of ``info``'s generation) and the bars after them,
        read from the store; the Redis value is extended with those if it ends where they
        start."""
        symbol, tf, gen = info.symbol, info.timeframe.value, info.generation
        have = len(columns["ts"])
        snap, tail = self.store.candles.load_after(
            symbol, info.timeframe, int(columns["ts"][have - 1])
        )
        self._counters.add("series", "extends")
        if snap.generation != gen or have + len(tail) != snap.count:
            # Rewritten meanwhile (or the copy was not what it claimed): start over from the
            # row just read, once; a second surprise goes to the store.
            if retry:
                return self._full_series(snap, retry=False)
            return self._from_store("series", lambda: self._load_series(snap))[0][1]
        if len(tail):
            self._append(key, codec.series_length(have), codec.encode_rows(tail))
        added = _columns(tail)
        held = self._held
        if held is not None and held.extend(symbol, tf, gen, have, added):
            columns, _ = held.get(symbol, tf, gen, snap.count)
        else:
            columns = _joined(columns, added)
        return _arrays(columns, snap)

    def append(self, candles: CandleArrays) -> SeriesWrite:
        """Write ``candles`` to the store, then bring the cache up to date; what it did.

        The one call of a live feed (the stream service) for each new bar, before it
        publishes the bar: ``store.candles.upsert`` (errors propagate, and nothing is cached
        then), then for an append the cached series value and this process's held copy are
        extended with the new bars (each only if it ends where the series ended: otherwise
        the next reader extends it), for a rewrite the old generation's value is dropped,
        and when the last bar given is the series' last one it becomes the latest candle
        (:meth:`put_latest`; other processes' in-process tiers drop their copy through
        tracking). Cache failures are logged, not raised.
        """
        write = self.store.candles.upsert(candles)
        info, previous = write.series, write.previous
        if info is None:
            return write
        symbol, tf = info.symbol, info.timeframe.value
        if write.kind == "append" and previous is not None:
            added = candles.between(previous.last_ns + 1, None)
            key = self.keys.candle_series(symbol, tf, info.generation)
            self._append(key, codec.series_length(previous.count), codec.encode_rows(added))
            if self._held is not None:
                self._held.extend(symbol, tf, info.generation, previous.count, _columns(added))
        elif write.kind == "rewrite" and previous is not None:
            self._discard(self.keys.candle_series(symbol, tf, previous.generation))
            if self._held is not None:
                self._held.drop(symbol, tf)
        if len(candles) and int(candles.ts[-1]) == info.last_ns:
            self.put_latest(candles)
        return write

    def forget(self, symbol: str, timeframe: Timeframe, generation: int) -> bool:
        """Drop the cached series of that generation and the latest candle of ``symbol``
        (after ``store.candles.delete``). False when the cache server could not be reached
        (its copies then expire; a later import gets a new generation, never this one)."""
        tf = Timeframe.parse(timeframe).value
        if self._held is not None:
            self._held.drop(symbol, tf)
        if self._local is not None:
            self._local.invalidate([self.keys.latest_candle(symbol, tf)])
        try:
            self._r.delete(
                self.keys.candle_series(symbol, tf, generation), self.keys.latest_candle(symbol, tf)
            )
        except redis.RedisError as exc:
            self._failed("series", error_kind(exc), str(exc))
            return False
        return True

    def _get_range(self, key: str, start_bar: int, end_bar: int) -> bytes | None:
        """Bars ``[start_bar, end_bar)`` of a cached series; None if Redis has not all of them."""
        if time.monotonic() < self._down_until:
            return None
        first = codec.row_offset(start_bar)
        try:
            raw = cast(bytes, self._r.getrange(key, first, codec.row_offset(end_bar) - 1))
        except redis.RedisError as exc:
            what = error_kind(exc)
            self._failed("series", what, str(exc))
            if what == "unreachable":
                self._down_until = time.monotonic() + DOWN_BACKOFF
            return None
        self._counters.add("series", "bytes_read", len(raw))
        return raw if len(raw) == codec.BAR_BYTES * (end_bar - start_bar) else None

    def _append(self, key: str, length: int, rows: bytes) -> None:
        """Append ``rows`` to the cached series ``key`` if it is ``length`` bytes long now."""
        if not rows or time.monotonic() < self._down_until:
            return
        try:
            self._append_script(keys=[key], args=[length, rows, self.series_ttl])
        except redis.RedisError as exc:
            what = error_kind(exc)
            self._failed("series", what, str(exc))
            if what == "unreachable":
                self._down_until = time.monotonic() + DOWN_BACKOFF


def _columns(candles: CandleArrays) -> dict[str, Any]:
    return {name: getattr(candles, name) for name in ("ts", *COLUMNS)}


def _arrays(columns: dict[str, Any], info: SeriesInfo) -> CandleArrays:
    return CandleArrays(
        **columns,
        symbol=info.symbol,
        timeframe=info.timeframe,
        source=info.source,
        meta=series_meta(info),
    )


def _joined(first: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {name: np.concatenate([first[name], then[name]]) for name in first}


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
