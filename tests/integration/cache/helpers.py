"""Helpers for the cache tests: a real store-query counter and real child processes."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import sqlalchemy as sa

from traderunner.cache import MarketCache
from traderunner.domain.timeframe import Timeframe
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

_CANDLES = re.compile(r"\bFROM\s+candles\b", re.IGNORECASE)


class CandleQueries:
    """Counts statements that read the store's ``candles`` table, at the sqlite3 driver.

    ``sqlite3.Connection.set_trace_callback`` sees every statement the driver runs, including
    the raw-cursor bulk fetch of ``store.candles.load`` that SQLAlchemy's events never see.
    Pooled connections made before the hook are dropped, so every connection is traced.
    """

    def __init__(self, store: Store) -> None:
        assert store.dialect == "sqlite", "the counter traces sqlite3 connections"
        self.count = 0
        self.statements: list[str] = []
        self._lock = threading.Lock()
        sa.event.listen(store.engine, "connect", self._on_connect)
        store.engine.dispose()

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if _CANDLES.search(sql):
            with self._lock:
                self.count += 1
                self.statements.append(sql)

    def reset(self) -> None:
        with self._lock:
            self.count = 0
            self.statements.clear()


def stampede_child(
    store_url: str,
    cache_url: str,
    prefix: str,
    kind: str,
    symbol: str,
    threads: int,
    barrier: Any,
    results: Any,
) -> None:
    """One process of the stampede test: ``threads`` cold reads of one key at one instant."""
    store = Store.connect(store_url)
    queries = CandleQueries(store)
    cache = MarketCache(connect(cache_url, decode=False), Keys(prefix), store, local=True)
    go = threading.Event()
    seen: list[Any] = []
    errors: list[str] = []

    def read() -> None:
        go.wait()
        try:
            if kind == "latest":
                bar = cache.latest(symbol, Timeframe.M5)
                seen.append(None if bar is None else (bar.ts_ns, bar.close))
            else:
                got = cache.series(symbol, Timeframe.M5)
                seen.append((len(got), int(got.ts[-1]), float(got.close.sum())))
        except Exception as exc:  # reported to the test, which fails on it
            errors.append(repr(exc))

    pool = [threading.Thread(target=read) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait(timeout=60)
    go.set()
    for t in pool:
        t.join(60)
    cache.close()
    store.close()
    results.put({"queries": queries.count, "seen": sorted(set(seen)), "errors": errors})


def writer_child(
    cache_url: str, store_url: str, prefix: str, symbol: str, writes: int, pause: float, ready: Any
) -> None:
    """Another process writing the latest candle ``writes`` times; each bar's ``open`` is the
    monotonic time its write was issued and ``ts_ns`` its sequence number (1, 2, ...)."""
    import numpy as np

    from traderunner.domain.candles import CandleArrays

    store = Store.connect(store_url)
    client = connect(cache_url, decode=False)
    cache = MarketCache(client, Keys(prefix), store, local=False)
    client.ping()  # connected before the first timed write
    ready.wait(timeout=60)
    for i in range(1, writes + 1):
        time.sleep(pause)
        issued = time.monotonic()
        one = np.array([1.0])
        cache.put_latest(
            CandleArrays(
                ts=np.array([i], dtype=np.int64),
                open=np.array([issued]),
                high=one,
                low=one,
                close=one,
                volume=one,
                symbol=symbol,
                timeframe=Timeframe.M5,
                source="writer",
            )
        )
    cache.close()
    store.close()


def series_reader_child(
    store_url: str, cache_url: str, prefix: str, symbol: str, until: int, ready: Any, results: Any
) -> None:
    """Another process reading a series through its own MarketCache (held copy on) until its
    version reaches ``until``; reports what each read returned and its reads of the candles
    table (its cache counts go to the shared ones on close)."""
    import zlib

    store = Store.connect(store_url)
    queries = CandleQueries(store)
    cache = MarketCache(connect(cache_url, decode=False), Keys(prefix), store, local=True)
    seen: list[tuple[int, int, int]] = []
    errors: list[str] = []
    ready.set()
    deadline = time.monotonic() + 60
    version = 0
    while version < until and time.monotonic() < deadline:
        try:
            got = cache.series(symbol, Timeframe.M5)
        except Exception as exc:  # reported to the test, which fails on it
            errors.append(repr(exc))
            break
        version = int(got.meta["version"])
        seen.append((version, len(got), zlib.crc32(got.close.tobytes())))
    cache.close()  # adds this process's counts to the shared ones
    store.close()
    results.put({"seen": seen, "errors": errors, "statements": list(queries.statements)})
