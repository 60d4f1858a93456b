"""What the job client costs a process that only submits and reads jobs (the dashboard).

``python benchmarks/client_imports.py [--src DIR] [--runs N] [--out NAME]`` starts its own
embedded Valkey server and a SQLite store with a little synthetic data, then runs N fresh
interpreters that each do what a dashboard does with jobs: import ``traderunner.jobs.client``,
``JobClient.open``, submit one backtest and one 12-combination sweep (full validation), list the
jobs. Each child reports its wall times per step, its peak RSS (``ru_maxrss``) and which heavy
modules ended up imported (numba, llvmlite, the engine's kernels, the worker, Celery's worker).

``--baseline DIR`` also measures another checkout's ``src`` (put first on ``sys.path``, same
interpreter, same servers and data), alternating baseline and this checkout run by run so that
machine load hits both alike, and reports both medians and their ratios. Results are written to
``benchmarks/results/{NAME}.json`` (default ``client_imports``) and printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

HEAVY = (
    "numba",
    "llvmlite",
    "pandas",
    "traderunner.engine",
    "traderunner.engine.kernel",
    "traderunner.engine.backtest",
    "traderunner.strategies.indicators",
    "traderunner.jobs.runner",
    "traderunner.jobs.worker",
    "celery.worker",
    "celery.apps.worker",
)

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from traderunner.config import load_settings
from traderunner.jobs.client import JobClient
t_import = time.perf_counter() - t0
with JobClient.open(load_settings()) as client:
    t_open = time.perf_counter() - t0
    client.submit({"kind": "backtest", "strategy": "sma_cross", "symbols": ["AAA"],
                   "params": {"fast": 5, "slow": 20}, "options": {"fees_bps": 1.0}})
    client.submit({"kind": "sweep", "strategy": "sma_cross", "symbols": ["AAA"],
                   "grid": {"fast": [3, 5, 8, 13], "slow": [20, 30, 40]}})
    t_submit = time.perf_counter() - t0
    client.list()
    t_list = time.perf_counter() - t0
heavy = [m for m in json.loads(sys.argv[1]) if m in sys.modules]
print(json.dumps({
    "import_s": t_import, "open_s": t_open, "submit_s": t_submit, "list_s": t_list,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "modules": len(sys.modules), "heavy_imported": heavy,
}))
"""


def _seed(store_url: str) -> None:
    from datetime import UTC, datetime

    from traderunner.domain.timeframe import Timeframe
    from traderunner.marketdata import synthetic_candles
    from traderunner.store import Store

    store = Store.connect(store_url)
    try:
        end = datetime(2025, 6, 30, tzinfo=UTC)
        start = datetime(2025, 6, 20, tzinfo=UTC)
        store.candles.upsert(synthetic_candles("AAA", Timeframe.M5, start, end))
    finally:
        store.close()


def _child_env(env: dict[str, str], src: Path | None) -> dict[str, str]:
    if src is None:
        return env
    return {**env, "PYTHONPATH": f"{src.resolve()}{os.pathsep}{env.get('PYTHONPATH', '')}"}


def _median(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("import_s", "open_s", "submit_s", "list_s", "max_rss_mb", "modules")
    return {k: statistics.median(float(r[k]) for r in runs) for k in keys}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout's src")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", default="client_imports")
    args = parser.parse_args()

    import socket

    from traderunner.redisdb.embedded import EmbeddedServer

    contestants: dict[str, Path | None] = {"this": None}
    if args.baseline is not None:
        contestants = {"baseline": args.baseline, "this": None}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contestants}
    with tempfile.TemporaryDirectory(prefix="tr-client-bench-") as tmp:
        root = Path(tmp)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = EmbeddedServer("durable", "127.0.0.1", port, root / "valkey", uuid.uuid4().hex)
        server.start()
        try:
            store_url = f"sqlite:///{root / 'store.db'}"
            _seed(store_url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERUNNER_")}
            env.update(
                TRADERUNNER_DATA_DIR=str(root / "data"),
                TRADERUNNER_STORE_URL=store_url,
                TRADERUNNER_REDIS_URL=server.url,
                TRADERUNNER_REDIS_PREFIX=f"b{uuid.uuid4().hex[:6]}:",
            )
            for _ in range(args.runs):
                for name, src in contestants.items():  # alternating: load hits both alike
                    proc = subprocess.run(
                        [sys.executable, "-c", CHILD, json.dumps(HEAVY)],
                        env=_child_env(env, src),
                        capture_output=True,
                        text=True,
                        timeout=300,
                        check=True,
                    )
                    runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        finally:
            server.stop()
    medians = {name: _median(r) for name, r in runs.items()}
    report: dict[str, Any] = {
        "what": "fresh interpreter: import jobs.client, open, submit a backtest and a sweep, list",
        "python": sys.version.split()[0],
        "load_average": os.getloadavg(),
        "sources": {
            n: str(p.resolve()) if p else str(ROOT / "src") for n, p in contestants.items()
        },
        "median": medians,
        "heavy_imported": {name: r[-1]["heavy_imported"] for name, r in runs.items()},
        "runs": runs,
    }
    if "baseline" in medians:
        report["this_over_baseline"] = {
            k: medians["this"][k] / medians["baseline"][k] for k in medians["this"]
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n")
    shown = {k: v for k, v in report.items() if k not in ("runs", "sources")}
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
