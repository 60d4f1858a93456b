"""The worker process: the Celery app with our one task, a per-process context, a reconciler.

``traderunner worker`` calls :func:`run_worker`. The task is a thin shell over
:func:`traderunner.jobs.runner.execute`; each pool process builds its own store and Redis
connections on first use (never across a fork). The main process runs the reconciler thread
and handles TERM as a warm shutdown (Celery's default: finish the jobs in hand, take no more).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import Celery, signals

from traderunner.config import Settings
from traderunner.domain.jobs import Queue
from traderunner.jobs.app import TASK_RUN_JOB, make_celery
from traderunner.jobs.board import JobBoard
from traderunner.jobs.reconciler import ReconcilerThread
from traderunner.jobs.runner import Heartbeats, RetryableError, WorkerContext, execute
from traderunner.marketdata.cache import MarketCache
from traderunner.redisdb.connection import check_durable, connect, resolve_urls
from traderunner.redisdb.keys import Keys
from traderunner.store import Store
from traderunner.strategies import load_user_strategies

log = logging.getLogger(__name__)

_contexts: dict[int, WorkerContext] = {}


def worker_context(settings: Settings, name: str) -> WorkerContext:
    """This process's context, built on first use (after any fork)."""
    pid = os.getpid()
    ctx = _contexts.get(pid)
    if ctx is None:
        _contexts.clear()  # inherited from a parent process: never reuse its connections
        store = Store.connect(settings.resolved_store_url)
        durable = connect(resolve_urls(settings).durable, name=name)
        keys = Keys(settings.redis_prefix)
        ctx = WorkerContext(
            settings,
            store,
            durable,
            keys,
            JobBoard(store, durable, keys),
            name,
            Heartbeats(durable, settings.job_heartbeat_ttl),
            MarketCache.from_settings(settings, store),
        )
        _contexts[pid] = ctx
    return ctx


def warm_up() -> None:
    """Import the engine and load its numba kernels from the cache, on a few synthetic bars.

    Run in each pool process as it starts, so the first job does not pay ~0.5 s of imports
    and cache loading (which would also skew every sweep's first chunk).
    """
    import numpy as np

    from traderunner.domain.candles import CandleArrays
    from traderunner.engine import run_backtest, run_sweep

    n = 300
    close = 100.0 + np.cumsum(np.sin(np.arange(n) / 7.0))
    candles = CandleArrays(
        ts=np.arange(n, dtype=np.int64) * 300_000_000_000,
        open=close,
        high=close + 0.5,
        low=close - 0.5,
        close=close,
        volume=np.ones(n),
        symbol="WARMUP",
    )
    run_backtest("sma_cross", candles, {"fast": 5, "slow": 20})
    run_sweep("sma_cross", candles, combos=[{"fast": 5, "slow": 20}], workers=1)


def build_app(settings: Settings, *, name: str | None = None) -> Celery:
    """The worker's Celery app with the ``traderunner.run_job`` task registered."""
    app = make_celery(settings)
    worker_name = name or f"{socket.gethostname()}-{os.getpid()}"

    @app.task(
        name=TASK_RUN_JOB,
        bind=True,
        autoretry_for=(RetryableError,),
        retry_backoff=1,
        retry_backoff_max=30,
        retry_jitter=True,
        max_retries=20,
    )
    def run_job(self: Any, job_id: str) -> str:
        return execute(worker_context(settings, f"{worker_name}/{os.getpid()}"), job_id)

    return app


def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    queues: tuple[Queue, ...] = (Queue.INTERACTIVE, Queue.BATCH),
    loglevel: str = "INFO",
    pool: str = "prefork",
    name: str | None = None,
) -> None:
    """Run a worker in the foreground until TERM/INT (warm shutdown)."""
    urls = resolve_urls(settings)
    durable = connect(urls.durable, name="traderunner-worker-check")
    check_durable(durable, urls.durable, allow_unsafe=settings.allow_unsafe_redis)
    durable.close()
    Store.connect(settings.resolved_store_url).close()  # fail fast with a clear message
    # User strategies load before the pool forks, so every pool process has them.
    load_user_strategies(settings.strategy_dirs)
    host = socket.gethostname()
    node = name or f"traderunner-{os.getpid()}@{host}"
    app = build_app(settings, name=node)
    reconciler = ReconcilerThread(settings, app, node)

    @signals.worker_ready.connect(weak=False)
    def _start_reconciler(**_: Any) -> None:
        reconciler.start()

    @signals.worker_process_init.connect(weak=False)
    def _warm_pool_process(**_: Any) -> None:
        try:
            warm_up()
        except Exception as exc:  # a cold first job is slower, not wrong
            log.warning("warm-up failed: %s", exc)

    @signals.worker_shutdown.connect(weak=False)
    def _stop_reconciler(**_: Any) -> None:
        reconciler.stop()

    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        "-Q",
        ",".join(q.value for q in queues),
        "-n",
        node,
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv)
