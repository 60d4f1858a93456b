"""MarketCache: read-through cache of latest candles, candle series and strategy configs.

::

    cache = MarketCache.from_settings(settings, store)
    cache.latest("TSLA", Timeframe.M5)          # Candle | None: in process -> Redis -> store
    cache.append(candles)                        # the stream service: store, then cache
    cache.series("TSLA", Timeframe.M5, lo, hi)   # CandleArrays, like store.candles.load
    cache.stats(); cache.close()

Contracts:

* **Never fails a read because of the cache.** Server down, evicted key, corrupt value or a
  key of the wrong type: the read is answered from the store, and the failure is logged once
  per kind until it recovers. While the server is unreachable reads skip it for half a second
  at a time, so a dead cache costs a read almost nothing. Store errors are not cache errors:
  they propagate (StoreError, DataRangeError) exactly as the store raises them.
* **Latest candle** (``candle:{symbol}:{tf}``): TTL one bar (the timeframe's seconds). A miss
  reads the store's last bar; no bar there caches a short tombstone (None), so a symbol
  nobody has cannot hammer the store.
* **Series** (``series:{symbol}:{tf}:g{generation}``): the whole stored series as binary rows
  (codec.py), keyed by the store's series *generation*, which changes only when stored bars
  are rewritten (or inserted before the last one): a rewrite makes readers use a new key and
  the old one expires (``series_ttl``). Within a generation the series only grows at its end,
  so an append *extends* the cached value instead of replacing it. Each call reads the series
  row (one indexed query: generation, count) and then, cheapest first: the copy held in
  process (``local=True``, held.py) when it has ``count`` bars; else the bars it lacks from
  Redis (``GETRANGE``); else the whole value from Redis; and for what Redis lacks too, only
  the bars after the cached ones from the store (appended to the Redis value, atomically and
  only if it still ends where the reader's copy ends). Ranges are sliced from the full series.
  A reader never pairs bars with a newer version than theirs: the version and generation in
  ``meta`` are the row read before the bars (or the snapshot the bars were read in).
* **Appends** (:meth:`MarketCache.append`): the stream service's one call per new bar: store
  upsert, then the series value extended, the held copy extended, and the latest candle set.
* **Strategy configs** (``config:{name}``, JSON): plain get/put, TTL ``config_ttl``.
* **Stampede protection**: a missing key is loaded by one thread in the process (the others
  wait on its future) and by one process in the cluster (a ``SET NX PX`` fill lock; the other
  processes poll until the value appears, taking the lock over if its holder died); a waiter
  that gives up reads the store itself.
* **In-process tier** (``local=True``): latest candles and configs are also kept in process,
  invalidated by the server (see local.py); a hit costs about as much as a dict lookup.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import redis

from traderunner.cache import codec
from traderunner.cache.clients import (
    ByteClients,
    Problems,
    cache_client,
    error_kind,
    tracking_connection,
)
from traderunner.cache.flight import (
    LATEST_FILL,
    SERIES_FILL,
    Filler,
    FillPolicy,
    Loaded,
)
from traderunner.cache.held import MAX_HELD_BYTES, HeldSeries
from traderunner.cache.local import MISSING, LocalTier, Maintenance
from traderunner.cache.stats import CacheStats, Counters, read_stats
from traderunner.config import Settings
from traderunner.domain.candles import COLUMNS, Candle, CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError, ParameterError
from traderunner.redisdb.keys import Keys
from traderunner.redisdb.scripts import APPEND_IF_LENGTH
from traderunner.store import SeriesInfo, SeriesWrite, Store
from traderunner.store.candles import series_meta

T = TypeVar("T")

NEGATIVE_TTL = 5  # a "no such series" tombstone lives this long (an import may follow)
DOWN_BACKOFF = 0.5  # after an unreachable server, skip it this long
FLUSH_EVERY = 1.0
DRAIN_EVERY = 0.0002  # a busy reader applies waiting invalidations itself this often


class MarketCache:
    """The market-data cache in front of the store (see the module docstring).

    ``cache`` is a client of the cache Redis (a ``decode_responses`` one gets a byte-returning
    sibling); ``local`` turns the in-process tiers on (latest candles and configs, and up to
    ``held_bytes`` of candle series). Thread-safe; one per process (it keeps a daemon thread
    and, with ``local``, one tracking connection). Never share it across a fork: build it in
    the child.
    """

    def __init__(
        self,
        cache: redis.Redis,
        keys: Keys,
        store: Store,
        *,
        local: bool = True,
        series_ttl: int = 3600,
        config_ttl: int = 3600,
        held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self.keys = keys
        self.store = store
        self.series_ttl = int(series_ttl)
        self.config_ttl = int(config_ttl)
        self._clients = ByteClients(cache)
        self._r = self._clients.redis
        self._local = LocalTier() if local else None
        self._held = HeldSeries(held_bytes) if local else None
        self._counters = Counters()
        self._problems = Problems("market cache")
        self._down_until = 0.0
        self._last_flush = time.monotonic()
        self._next_drain = 0.0
        self._latest_keys: dict[tuple[str, str], tuple[str, Timeframe]] = {}
        self._filler = Filler(
            self._r, keys, from_store=self._from_store, write=self._write, failed=self._failed
        )
        self._append_script = self._r.register_script(APPEND_IF_LENGTH)
        self._thread: Maintenance | None = None
        self._thread_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> MarketCache:
        """A cache on the configured cache Redis (``resolve_urls(settings).cache``)."""
        client = cache_client(settings)
        cache = cls(
            client,
            Keys(settings.redis_prefix),
            store,
            local=settings.cache_local,
            series_ttl=settings.cache_series_ttl,
            config_ttl=settings.cache_config_ttl,
        )
        cache._clients.owns_given = True
        return cache

    # ------------------------------------------------------------------ latest candles
    def latest(self, symbol: str, timeframe: Timeframe) -> Candle | None:
        """The newest bar of ``symbol``: in process, else Redis, else the store (then cached).

        None when the store has no bar for it.
        """
        # Parsing the timeframe and formatting the key cost more than the local hit itself.
        known = self._latest_keys.get((symbol, timeframe))
        if known is None:
            known = self._latest_key(symbol, timeframe)
        key, tf = known
        tier = self._local
        if tier is not None:
            self._drain()
            value = tier.get(key)
            if value is not MISSING:
                self._counters.add("latest", "local_hits")
                return value
        result: Candle | None = self._read(
            "latest",
            key,
            lambda raw: codec.decode_candle(raw, symbol, tf),
            lambda: self._load_latest(symbol, tf),
            LATEST_FILL,
            hot=True,
        )
        return result

    def _latest_key(self, symbol: str, timeframe: Timeframe | str) -> tuple[str, Timeframe]:
        tf = Timeframe.parse(timeframe)
        known = (self.keys.latest_candle(symbol, tf.value), tf)
        if len(self._latest_keys) >= 10_000:
            self._latest_keys.clear()
        self._latest_keys[(symbol, timeframe)] = known
        return known

    def put_latest(self, candles: CandleArrays) -> None:
        """Cache the last bar of ``candles`` as the latest one (TTL one bar).

        Call it after the bar is in the store. A cache failure is logged, not raised.
        """
        if len(candles) == 0:
            return
        if not candles.symbol or candles.timeframe is None:
            raise DataRangeError("put_latest needs candles with a symbol and a timeframe")
        bar = candles.last()
        tf = Timeframe.parse(candles.timeframe)
        key = self.keys.latest_candle(candles.symbol, tf.value)
        self._write("latest", key, codec.encode_candle(bar), tf.seconds)
        if self._local is not None:
            self._local.invalidate([key])

    def _load_latest(self, symbol: str, tf: Timeframe) -> Loaded:
        bars = self.store.candles.last(symbol, tf)
        if bars is None:
            return None, codec.encode_candle(None), NEGATIVE_TTL
        bar = bars.last()
        return bar, codec.encode_candle(bar), tf.seconds

    # ------------------------------------------------------------------ candle series
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

    # ------------------------------------------------------------------ strategy configs
    def strategy_config(self, name: str) -> dict[str, Any] | None:
        """The cached config of strategy ``name``, or None (not cached, or the cache failed)."""
        key = self.keys.strategy_config(name)
        tier = self._local
        if tier is not None:
            self._drain()
            raw = tier.get(key)
            if raw is not MISSING:
                self._counters.add("config", "local_hits")
                return None if raw is None else codec.decode_config(raw)
        token = tier.begin() if tier is not None else 0
        got = self._get("config", key, with_ttl=tier is not None)
        if got is None:
            return None
        raw, pttl = got
        if raw is None:
            if pttl == -3:  # another type under our key: nothing to rebuild it from
                self._discard(key)
                return None
            self._counters.add("config", "misses")
            if tier is not None:
                tier.fill(key, None, self.config_ttl * 1000, token)
            return None
        try:
            value = codec.decode_config(raw)
        except codec.CorruptValueError as exc:
            self._failed("config", "corrupt", f"{key}: {exc}")
            self._discard(key)
            return None
        self._counters.add("config", "hits")
        self._problems.recovered("corrupt")
        if tier is not None:
            tier.fill(key, raw, pttl, token)
        return value

    def put_strategy_config(self, name: str, config: dict[str, Any]) -> None:
        """Cache ``config`` (a JSON object) for ``config_ttl`` seconds; ParameterError if not
        JSON. A cache failure is logged, not raised."""
        try:
            raw = codec.encode_config(dict(config))
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"the config of strategy {name!r} is not plain JSON ({exc}): use numbers, "
                "strings, booleans, lists and objects"
            ) from None
        key = self.keys.strategy_config(name)
        self._write("config", key, raw, self.config_ttl)
        if self._local is not None:
            self._local.invalidate([key])

    # ------------------------------------------------------------------ stats, lifecycle
    def stats(self) -> CacheStats:
        """Counts summed over every process (this one's flushed first) and server memory.

        RedisError when the cache server cannot be reached.
        """
        self._flush()
        found = read_stats(self._r, self.keys)
        tier = self._local
        return dataclasses.replace(
            found,
            local_entries=0 if tier is None else len(tier),
            local_active=bool(tier is not None and tier.active),
        )

    @property
    def local_active(self) -> bool:
        """True while the in-process tier serves (its tracking connection is up)."""
        return self._local is not None and self._local.active

    def local_ready(self, timeout: float = 5.0) -> bool:
        """Start the in-process tier now and wait until it is coherent (tracking is on)."""
        if self._local is None:
            return False
        thread = self._ensure_thread()
        return thread is not None and thread.ready.wait(timeout)

    def close(self) -> None:
        """Flush this process's counts, stop the thread, close the connections made here."""
        if self._closed:
            return
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()
        self._flush()
        if self._local is not None:
            self._local.set_active(False)
        self._clients.close()

    def __enter__(self) -> MarketCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the read path
    def _read(
        self,
        kind: str,
        key: str,
        decode: Callable[[bytes], T],
        load: Callable[[], Loaded],
        fill: FillPolicy,
        *,
        hot: bool,
    ) -> T:
        tier = self._local if hot else None
        token = tier.begin() if tier is not None else 0
        got = self._get(kind, key, with_ttl=tier is not None)
        if got is None:  # the server is down: the store answers, nothing is cached
            return cast(T, self._from_store(kind, load)[0])
        raw, pttl = got
        bad = False
        if raw is not None:
            try:
                value = decode(raw)
            except codec.CorruptValueError as exc:
                self._failed(kind, "corrupt", f"{key}: {exc}")
                bad = True
            else:
                self._counters.add(kind, "hits")
                self._problems.recovered("corrupt", "wrongtype")
                if tier is not None:
                    tier.fill(key, value, pttl, token)
                return value
        elif pttl == -3:  # WRONGTYPE, already logged by _get
            bad = True
        if not bad:
            self._counters.add(kind, "misses")
        return self._filler.fill(kind, key, decode, load, fill, bad)

    def _get(self, kind: str, key: str, *, with_ttl: bool) -> tuple[bytes | None, int] | None:
        """(value or None, PTTL) from Redis; None when the server is down; PTTL -3 when the key
        holds another type."""
        self._ensure_thread()
        if time.monotonic() < self._down_until:
            return None
        try:
            if with_ttl:
                pipe = self._r.pipeline(transaction=False)
                pipe.get(key)
                pipe.pttl(key)
                raw, pttl = pipe.execute()
            else:
                raw, pttl = self._r.get(key), -1
        except redis.RedisError as exc:
            what = error_kind(exc)
            self._failed(kind, what, str(exc))
            if what == "unreachable":
                self._down_until = time.monotonic() + DOWN_BACKOFF
                return None
            return (None, -3) if what == "wrongtype" else None
        self._problems.recovered("unreachable", "error")
        self._maybe_flush()
        return raw, int(pttl)

    def _from_store(self, kind: str, load: Callable[[], Loaded]) -> Loaded:
        loaded = load()
        self._counters.add(kind, "store_loads")
        return loaded

    def _write(self, kind: str, key: str, raw: bytes, ttl: int) -> None:
        if time.monotonic() < self._down_until:
            return
        try:
            self._r.set(key, raw, ex=max(int(ttl), 1))
        except redis.RedisError as exc:
            what = error_kind(exc)
            self._failed(kind, what, str(exc))
            if what == "unreachable":
                self._down_until = time.monotonic() + DOWN_BACKOFF

    def _discard(self, key: str) -> None:
        with contextlib.suppress(redis.RedisError):
            self._r.delete(key)

    def _failed(self, kind: str, what: str, detail: str) -> None:
        self._counters.add(kind, "errors")
        self._problems.failed(what, detail)

    # ------------------------------------------------------------------ background
    def _ensure_thread(self) -> Maintenance | None:
        thread = self._thread
        if thread is not None or self._closed:
            return thread
        with self._thread_lock:
            if self._thread is None and not self._closed:
                prefixes = (self.keys.latest_candles(), self.keys.strategy_configs())
                self._thread = Maintenance(
                    self._local,
                    lambda: tracking_connection(self._r, "traderunner-cache-tracking"),
                    prefixes,
                    self._flush,
                    self._server_back,
                )
                self._thread.start()
            return self._thread

    def _drain(self) -> None:
        now = time.monotonic()
        if now >= self._next_drain:
            self._next_drain = now + DRAIN_EVERY
            thread = self._thread
            if thread is not None:
                thread.drain_if_pending()

    def _server_back(self) -> None:
        # The tracking connection is up again: stop skipping the server at once.
        self._down_until = 0.0

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        if time.monotonic() >= self._down_until:
            self._counters.flush(self._r, self.keys)


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


__all__ = ["MarketCache"]
