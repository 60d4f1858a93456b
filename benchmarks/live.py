"""Live path benchmark: a candle published to its order recorded in the store, and signals per
second through one trader; against a SQLite bridge table polled every 100 ms, same run.

``python benchmarks/live.py [--quick]`` starts its own embedded durable and cache Valkey (AOF
everysec, noeviction for the durable one, as in production), a SQLite store in a temporary
folder, and the real trader process (``python -m traderunner trader``); it writes
``benchmarks/results/live.json`` and ``live.md`` (``live-quick.*`` with ``--quick``).

1. **Latency, candle published → order recorded.** This process plays the stream service after
   its strategy ran: for each bar it publishes the signal and the candle in one round trip
   (``Publisher.publish_many``, the payloads of ``domain/live.py``), the candle envelope
   stamped with ``time.time_ns()`` just before. The trader records the order (``orders``
   row, ``created_ns`` = ``time.time_ns()`` just before its insert commits), steps the bar
   with the paper broker and records fills and the position. Latency = ``created_ns`` minus
   the candle's stamp (both on this machine's clock). One bar every 20 ms (no queueing).
   The SQLite bridge: this process inserts the signal row (stamped the same way, WAL, one
   transaction per signal); a poller process checks every 100 ms, and for each new row
   inserts the order row (stamped) and marks the signal handled, in one transaction: the
   approach being replaced. Rounds alternate bus and bridge.
2. **Signals per second through one trader**: N signals (over 50 live strategies, no
   candles) wait on the stream before the trader starts; from its first order recorded to
   its last, with the risk checks on (kill switch read, exposure) and every order its own
   store transaction.
3. The stream service's own share per bar (store upsert, cache, the strategy on its
   ``history_bars`` window, publish, cursor): ``StreamService.handle`` p50/p99 over a replay.

Goals (issue 10): the whole path under 5 ms p99, at least 1,000 signals per second. Exit 0
when every check passed (every order recorded once), 1 if not. A missed goal is reported, not
an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
POLL_S = 0.1
PACE = 0.02  # seconds between bars: no queueing, so the figure is the path, not a backlog
STEP = 300 * 10**9
T0 = 1_750_000_000 * 10**9 // STEP * STEP


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# -- the SQLite bridge poller (a child process) ----------------------------------------------


def child_bridge(db_path: str) -> None:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    print("ready", flush=True)
    while True:
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(
            "SELECT id, payload FROM bridge WHERE processed = 0 ORDER BY id"
        ).fetchall()
        stop = False
        for ident, payload in rows:
            if payload == "stop":
                stop = True
                continue
            db.execute(
                "INSERT OR IGNORE INTO orders (signal_id, created_ns) VALUES (?, ?)",
                (ident, time.time_ns()),
            )
        if rows:
            marks = ",".join("?" * len(rows))
            db.execute(
                f"UPDATE bridge SET processed = 1 WHERE id IN ({marks})", [r[0] for r in rows]
            )
        db.execute("COMMIT")
        if stop:
            return
        time.sleep(POLL_S)


# -- the parent --------------------------------------------------------------------------------


class Bench:
    def __init__(self, tmp: Path) -> None:
        from traderunner.bus import BusOptions, Publisher, ensure_group, topics
        from traderunner.redisdb.connection import connect
        from traderunner.redisdb.embedded import EmbeddedServer
        from traderunner.redisdb.keys import TRADER_GROUP, Keys
        from traderunner.store import Store

        password = uuid.uuid4().hex
        self.durable = EmbeddedServer("durable", "127.0.0.1", _port(), tmp / "durable", password)
        self.cache = EmbeddedServer(
            "cache", "127.0.0.1", _port(), tmp / "cache", password, maxmemory="64mb"
        )
        self.durable.start()
        self.cache.start()
        self.tmp = tmp
        self.prefix = "bench:"
        self.keys = Keys(self.prefix)
        self.store_url = f"sqlite:///{tmp / 'store.db'}"
        self.store = Store.connect(self.store_url)
        self.client = connect(self.durable.url)
        self.publisher = Publisher(self.client, self.keys, BusOptions())
        for topic in (topics.SIGNALS, topics.candles("M5")):
            ensure_group(self.client, self.keys, topic, TRADER_GROUP, start="0")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERUNNER_")} | {
            "TRADERUNNER_DATA_DIR": str(tmp / "data"),
            "TRADERUNNER_STORE_URL": self.store_url,
            "TRADERUNNER_REDIS_URL": self.durable.url,
            "TRADERUNNER_CACHE_URL": self.cache.url,
            "TRADERUNNER_REDIS_PREFIX": self.prefix,
        }
        self.trader: subprocess.Popen[bytes] | None = None

    def start_trader(self) -> None:
        err = open(self.tmp / "trader.err", "ab")  # noqa: SIM115 - lives as long as the child
        self.trader = subprocess.Popen(
            [sys.executable, "-m", "traderunner", "trader", "--name", "bench"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = time.monotonic() + 120
        while b"consuming" not in (self.tmp / "trader.err").read_bytes():
            if self.trader.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.tmp / "trader.err").read_text())
            time.sleep(0.05)

    def stop_trader(self) -> None:
        if self.trader is not None and self.trader.poll() is None:
            self.trader.send_signal(signal.SIGTERM)
            self.trader.wait(timeout=60)
        self.trader = None

    def close(self) -> None:
        self.stop_trader()
        self.client.close()
        self.store.close()
        self.durable.stop()
        self.cache.stop()

    def wait_orders(self, n: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.store.trading.count_orders() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.store.trading.count_orders()} of {n} orders")
            time.sleep(0.02)

    # -- 1. latency --------------------------------------------------------------------------

    def bus_round(self, first: int, n: int, pace: float) -> list[float]:
        """Bars ``first..first+n`` of live strategy ``lat``, one signal each; latencies (ms)."""
        from traderunner.bus import Envelope, topics
        from traderunner.domain.live import CandleMessage, SignalMessage

        stamps: dict[str, int] = {}
        for i in range(first, first + n):
            ts = T0 + i * STEP
            target, previous = (1, 0) if i % 2 == 0 else (0, 1)
            sig = Envelope.new(
                topics.SIGNALS,
                topics.SIGNAL,
                SignalMessage(
                    "lat", "sma_cross", "bench", "AAA", "M5", ts, target, previous, 100.0
                ).to_payload(),
                id=f"lat-{i:06d}",
            )
            price = 100.0 + (i % 7) * 0.1
            candle = CandleMessage(
                "AAA", "M5", ts, price, price + 0.2, price - 0.2, price, 1.0, signals=(sig.id,)
            )
            stamp = time.time_ns()
            self.publisher.publish_many(
                [
                    sig,
                    Envelope.new(
                        topics.candles("M5"), topics.CANDLE, candle.to_payload(), ts_ns=stamp
                    ),
                ]
            )
            stamps[sig.id] = stamp
            time.sleep(pace)
        self.wait_orders(first + n + self.drained)
        got = {o.signal_id: o.created_ns for o in self.store.trading.orders(account="bench")}
        return [(got[i] - s) / 1e6 for i, s in stamps.items()]

    drained = 0

    def bridge_round(self, db: sqlite3.Connection, first: int, n: int, pace: float) -> list[float]:
        stamps = {}
        for i in range(first, first + n):
            stamp = time.time_ns()
            cur = db.execute(
                "INSERT INTO bridge (ts_ns, payload) VALUES (?, ?)",
                (stamp, json.dumps({"live": "lat", "bar": i, "target": i % 2})),
            )
            stamps[int(cur.lastrowid or 0)] = stamp
            time.sleep(pace)
        deadline = time.monotonic() + 60
        while True:
            rows = dict(
                db.execute(
                    f"SELECT signal_id, created_ns FROM orders WHERE signal_id IN "
                    f"({','.join('?' * len(stamps))})",
                    list(stamps),
                ).fetchall()
            )
            if len(rows) == len(stamps) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [(rows[i] - s) / 1e6 for i, s in stamps.items() if i in rows]


def bridge_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS bridge (id INTEGER PRIMARY KEY, ts_ns INTEGER, payload TEXT,"
        " processed INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS bridge_todo ON bridge (processed, id)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS orders (signal_id INTEGER PRIMARY KEY, created_ns INTEGER)"
    )
    return db


def stream_share(tmp: Path, bars_days: int) -> dict[str, float]:
    """StreamService.handle per bar over a replay of demo data (one live strategy)."""
    from traderunner.bus import Publisher
    from traderunner.cache import MarketCache
    from traderunner.domain.candles import Candle
    from traderunner.domain.live import LiveStrategy
    from traderunner.domain.timeframe import Timeframe
    from traderunner.marketdata import load_demo
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.embedded import EmbeddedServer
    from traderunner.redisdb.keys import Keys
    from traderunner.signals import StreamService
    from traderunner.store import Store

    password = uuid.uuid4().hex
    durable = EmbeddedServer("durable", "127.0.0.1", _port(), tmp / "s-durable", password)
    cache_server = EmbeddedServer("cache", "127.0.0.1", _port(), tmp / "s-cache", password)
    durable.start()
    cache_server.start()
    store = Store.connect(f"sqlite:///{tmp / 'stream.db'}")
    try:
        tf = Timeframe.M5
        load_demo(store, ("AAPL",), tf, days=bars_days)
        source = store.candles.load("AAPL", tf)
        # the first half is history, the second half arrives as new bars (appended live)
        half = len(source) // 2
        store.candles.delete("AAPL", tf)
        store.candles.upsert(source.slice(0, half))
        store.live.add(LiveStrategy("s", "sma_cross", ("AAPL",), "M5"))
        keys = Keys("bench-stream:")
        client = connect(durable.url)
        cache = MarketCache(connect(cache_server.url), keys, store, local=False)
        service = StreamService(cache, Publisher(client, keys))
        times = []
        for i in range(half, len(source)):
            bar = Candle(
                int(source.ts[i]), float(source.open[i]), float(source.high[i]),
                float(source.low[i]), float(source.close[i]), float(source.volume[i]),
                symbol="AAPL", timeframe=tf, source="synthetic",
            )  # fmt: skip
            began = time.perf_counter_ns()
            service.handle(bar)
            times.append((time.perf_counter_ns() - began) / 1e6)
        cache.close()
        client.close()
        return {"bars": len(times), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99)}
    finally:
        store.close()
        durable.stop()
        cache_server.stop()


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child_bridge(args.child[1])
        return 0
    from traderunner.bus import Envelope, topics
    from traderunner.domain.live import LiveStrategy, SignalMessage

    quick = args.quick
    per_round, rounds = (100, 2) if quick else (500, 3)
    drain_n = 1000 if quick else 5000
    tmp = Path(tempfile.mkdtemp(prefix="tr-bench-live-"))
    report: dict[str, Any] = {"quick": quick, "machine": machine(), "checks": []}
    bench = Bench(tmp)
    try:
        # 2. throughput first, on an empty store: N signals waiting, then one trader drains them
        for k in range(50):
            bench.store.live.add(
                LiveStrategy(f"d{k:02d}", "sma_cross", ("AAA",), "M5", account="drain")
            )
        waiting = []
        for j in range(drain_n):
            k, i = j % 50, j // 50
            target, previous = (1, 0) if i % 2 == 0 else (0, 1)
            waiting.append(
                Envelope.new(
                    topics.SIGNALS,
                    topics.SIGNAL,
                    SignalMessage(
                        f"d{k:02d}",
                        "sma_cross",
                        "drain",
                        "AAA",
                        "M5",
                        T0 + i * STEP,
                        target,
                        previous,
                        100.0,
                    ).to_payload(),
                    id=f"drain-{j:06d}",
                )
            )
        for lo in range(0, drain_n, 500):
            bench.publisher.publish_many(waiting[lo : lo + 500])
        bench.store.live.add(LiveStrategy("lat", "sma_cross", ("AAA",), "M5", account="bench"))
        bench.start_trader()
        bench.wait_orders(drain_n)
        drained = bench.store.trading.orders(account="drain")
        span = (max(o.created_ns for o in drained) - min(o.created_ns for o in drained)) / 1e9
        report["throughput"] = {
            "signals": drain_n,
            "seconds": span,
            "signals_per_s": drain_n / span if span else float("inf"),
            "goal": 1000,
        }
        report["checks"].append(
            {"what": "every waiting signal has exactly one order", "ok": len(drained) == drain_n}
        )
        bench.drained = drain_n
        # 1. latency, alternating rounds
        bridge_path = tmp / "bridge.db"
        db = bridge_db(bridge_path)
        poller = subprocess.Popen(
            [sys.executable, __file__, "--child", "bridge", str(bridge_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert poller.stdout is not None and poller.stdout.readline().strip() == "ready"
        bus_ms: list[float] = []
        bridge_ms: list[float] = []
        first = 0
        for _ in range(rounds):
            bus_ms += bench.bus_round(first, per_round, PACE)
            bridge_ms += bench.bridge_round(db, first, per_round, PACE)
            first += per_round
        db.execute("INSERT INTO bridge (ts_ns, payload) VALUES (0, 'stop')")
        poller.wait(timeout=30)
        n = per_round * rounds
        report["checks"].append({"what": "bus: every signal one order", "ok": len(bus_ms) == n})
        report["checks"].append(
            {"what": "bridge: every signal one order", "ok": len(bridge_ms) == n}
        )
        lat_orders = bench.store.trading.orders(account="bench")
        report["checks"].append(
            {"what": "bus: no order twice", "ok": len({o.signal_id for o in lat_orders}) == n}
        )
        report["latency"] = {
            "signals": n,
            "bus": {"p50_ms": pct(bus_ms, 50), "p99_ms": pct(bus_ms, 99), "max_ms": max(bus_ms)},
            "sqlite_bridge_100ms": {
                "p50_ms": pct(bridge_ms, 50),
                "p99_ms": pct(bridge_ms, 99),
                "max_ms": max(bridge_ms),
            },
            "goal_p99_ms": 5.0,
        }
        bench.stop_trader()
        report["stream_share"] = stream_share(tmp, 4 if quick else 20)
    finally:
        bench.close()
        shutil.rmtree(tmp, ignore_errors=True)
    report["machine"]["load_average_after"] = os.getloadavg()
    ok = all(c["ok"] for c in report["checks"])
    name = "live-quick" if quick else "live"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if ok else 1


def markdown(r: dict[str, Any]) -> str:
    lat, thr, st = r["latency"], r["throughput"], r["stream_share"]
    b, s = lat["bus"], lat["sqlite_bridge_100ms"]
    lines = [
        "# Live path: candle published → order recorded; signals per second through one trader",
        "",
        f"Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in r['machine']['load_average'])} at the start. "
        "`python benchmarks/live.py" + (" --quick" if r["quick"] else "") + "`.",
        "",
        f"## Latency ({lat['signals']} signals each, alternating rounds, one every "
        f"{PACE * 1000:.0f} ms)",
        "",
        "| path | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|",
        f"| bus → trader process → order row | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | "
        f"{b['max_ms']:.1f} |",
        f"| SQLite bridge polled every 100 ms → order row | {s['p50_ms']:.2f} | "
        f"{s['p99_ms']:.2f} | {s['max_ms']:.1f} |",
        "",
        f"Goal p99 < {lat['goal_p99_ms']:g} ms: "
        + ("met" if b["p99_ms"] < lat["goal_p99_ms"] else "**missed**"),
        "",
        "## Throughput",
        "",
        f"{thr['signals']} signals waiting, one trader process: {thr['signals_per_s']:.0f} "
        f"signals/s ({thr['seconds']:.2f} s, every order its own store transaction). Goal "
        f">= {thr['goal']}: " + ("met" if thr["signals_per_s"] >= thr["goal"] else "**missed**"),
        "",
        "## The stream service's own share per bar (before the publish)",
        "",
        f"{st['bars']} bars appended live (store, cache, sma_cross on its window, publish, "
        f"cursor): p50 {st['p50_ms']:.2f} ms, p99 {st['p99_ms']:.2f} ms.",
        "",
        "Checks: "
        + "; ".join(f"{c['what']}: {'ok' if c['ok'] else 'FAILED'}" for c in r["checks"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
