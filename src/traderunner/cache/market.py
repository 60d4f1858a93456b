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
  invalidated by the server (see local.py); a hit costs about as much as a dict lookup. Up to
  ``held_bytes`` of series are held in process too (held.py), checked against the store's
  series row on every read instead of invalidated. The series half of the class is
  :class:`~traderunner.cache.series.SeriesReads` (series.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

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
    Filler,
    FillPolicy,
    Loaded,
)
from traderunner.cache.held import MAX_HELD_BYTES, HeldSeries
from traderunner.cache.local import MISSING, LocalTier, Maintenance
from traderunner.cache.series import DOWN_BACKOFF, SeriesReads
from traderunner.cache.stats import CacheStats, Counters, read_stats
from traderunner.config import Settings
from traderunner.domain.candles import Candle, CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError, ParameterError
from traderunner.redisdb.keys import Keys
from traderunner.redisdb.scripts import APPEND_IF_LENGTH
from traderunner.store import Store

T = TypeVar("T")

NEGATIVE_TTL = 5  # a "no such series" tombstone lives this long (an import may follow)
FLUSH_EVERY = 1.0
DRAIN_EVERY = 0.0002  # a busy reader applies waiting invalidations itself this often


class MarketCache(SeriesReads):
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


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["MarketCache"]
