"""What a dashboard process gets when it submits and reads jobs: no engine kernels, no numba.

A fresh interpreter does everything the dashboard will do with jobs through the client (open,
submit a backtest, a sweep and a user strategy's job, refuse bad input, read, cancel), then
reports which modules it imported. The import-linter contract in pyproject.toml says the same
statically; this proves it at run time, lazy imports and Celery's own modules included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.jobenv import SYMBOLS, make_settings
from tests.jobhelpers import seed_candles, settings_env
from tests.redishelpers import RedisPair
from traderunner.store import Store

CHILD = """
import json, sys
from traderunner.config import load_settings
from traderunner.errors import ParameterError
from traderunner.jobs import JobClient
with JobClient.open(load_settings()) as client:
    ids = [
        client.submit({"kind": "backtest", "strategy": "sma_cross", "symbols": ["AAA", "BBB"],
                       "params": {"fast": 5, "slow": 20}, "options": {"stop_loss": 0.02}}).id,
        client.submit({"kind": "sweep", "strategy": "macd", "symbols": ["AAA"],
                       "grid": {"fast": [5, 7, 9], "slow": [20, 26]}}).id,
        client.submit({"kind": "backtest", "strategy": "exploding", "symbols": ["AAA"]}).id,
    ]
    try:
        client.submit({"kind": "sweep", "strategy": "sma_cross", "symbols": ["AAA"],
                       "grid": {"fast": [50], "slow": [20]}})
    except ParameterError as exc:
        refused = str(exc)
    listed = [r.id for r in client.list().items]
    client.cancel(ids[0], actor="")
    client.status(ids[1]); client.children(ids[1]); client.result(ids[0]); client.workers()
report = {"ids": ids, "listed": listed, "refused": refused, "modules": sorted(sys.modules)}
print(json.dumps(report))
"""

#: Modules a job-submitting process must never load (prefixes: their submodules too).
FORBIDDEN = (
    "numba",
    "llvmlite",
    "traderunner.engine.backtest",
    "traderunner.engine.kernel",
    "traderunner.engine.metrics",
    "traderunner.engine.result",
    "traderunner.engine.sweep",
    "traderunner.jobs.runner",
    "traderunner.jobs.worker",
    "traderunner.jobs.celery_app",
    "traderunner.jobs.reconciler",
    "traderunner.cli",
    "celery.worker",
    "celery.apps.worker",
    "celery.concurrency",
)


def test_the_client_submits_and_reads_without_engine_or_worker_modules(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    settings = make_settings(redis_pair, tmp_path)  # with the plugin folder (exploding)
    store = Store.connect(settings.resolved_store_url)
    try:
        seed_candles(store, SYMBOLS, days=2)
    finally:
        store.close()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report["ids"]) == 3 and set(report["ids"]) <= set(report["listed"])
    assert "invalid" in report["refused"]  # the grid was checked, by the same pure code
    modules = report["modules"]
    loaded = [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert loaded == [], loaded
    # It did use what validation needs: the strategies (Params) and the engine's options.
    assert {"traderunner.strategies.grid", "traderunner.engine.options"} <= set(modules)
    assert any(m.startswith("traderunner_user_strategies.") for m in modules)


def test_the_check_sees_a_forbidden_import() -> None:
    # The same inspection, on a process that does import numba: it must find it.
    forbidden = "numba"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import json, sys, {forbidden}; print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert forbidden in json.loads(proc.stdout)
