"""The worker process: the Celery app with our one task, a per-process context, a reconciler.

``traderunner worker`` calls :func:`run_worker`. The task is a thin shell over
:func:`traderunner.jobs.runner.execute`; each pool process builds its own store and Redis
connections on first use (never across a fork). The main process runs the reconciler thread
and handles TERM as a warm shutdown (Celery's default: finish the jobs in hand, take no more).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, signals

from traderunner.config import Settings
from traderunner.domain.jobs import Queue
from traderunner.jobs.app import TASK_RUN_JOB, make_celery
from traderunner.jobs.reconciler import ReconcilerThread
from traderunner.jobs.runner import QuotaWaitError, RetryableError, WorkerContext, execute
from traderunner.jobs.workers import Advertiser
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
        ctx = WorkerContext.open(settings, name)
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
        try:
            return execute(worker_context(settings, f"{worker_name}/{os.getpid()}"), job_id)
        except QuotaWaitError as exc:
            # The job is QUEUED, saying what it waits for; deliver it again at the reset.
            raise self.retry(countdown=exc.wait_s, max_retries=None) from None

    return app


class StallWatchdog(threading.Thread):
    """Restart this worker in place when its consumer stops taking messages.

    Celery/kombu workers have been seen (here too, rarely, in the Redis-restart chaos test;
    upstream in celery#8030, #9054, #10205) to reconnect after the broker restarted and then
    never take another message. This thread, in the main process, watches for exactly that:
    messages waiting in this worker's queues while it holds no task and has received none for
    ``settings.worker_stall_timeout`` seconds. Then nothing is in flight, so it kills its idle
    pool processes and re-executes itself with the same command line (same pid), which builds
    a fresh consumer.
    """

    def __init__(self, settings: Settings, queues: tuple[Queue, ...]) -> None:
        super().__init__(name="traderunner-stall-watchdog", daemon=True)
        self.settings = settings
        self.queues = queues
        self.last_seen = time.monotonic()
        self._stop_event = threading.Event()

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        from celery.worker import state as worker_state

        from traderunner.jobs.queueing import queue_lengths

        durable = connect(resolve_urls(self.settings).durable, name="traderunner-watchdog")
        keys = Keys(self.settings.redis_prefix)
        interval = min(max(self.settings.worker_stall_timeout / 5.0, 0.2), 10.0)
        while not self._stop_event.wait(interval):
            try:
                lengths = queue_lengths(durable, keys)
            except Exception:  # broker down: nothing to judge until it is back
                self.touch()
                continue
            waiting = sum(lengths[q.value] for q in self.queues)
            if not waiting or worker_state.reserved_requests:
                self.touch()
                continue
            stalled = time.monotonic() - self.last_seen > self.settings.worker_stall_timeout
            # A warm shutdown stops consuming on purpose while messages wait: never restart then.
            if stalled and not self._stop_event.is_set():
                log.error(
                    "worker: %d message(s) waiting for %.0fs while this worker holds none: its "
                    "consumer is stuck (a known Celery/kombu failure after a broker reconnect); "
                    "restarting in place",
                    waiting,
                    self.settings.worker_stall_timeout,
                )
                restart_in_place()


def restart_in_place() -> None:
    """Kill this process's (idle) pool children, then exec the same command line again."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


@dataclass
class WorkerServices:
    """What a worker process runs beside Celery's consumer, wired to Celery's signals.

    Built by :func:`install_worker_services` for ``traderunner worker`` and for Celery's own
    ``celery -A traderunner.jobs.celery_app worker`` alike, so both run the same: the
    reconciler, the stall watchdog and the advertiser start when the worker is ready (named
    after its Celery node), each pool process warms the engine up, and a shutdown stops them.
    ``started`` and ``announced`` carry what :func:`run_worker` needs for its exit code.
    """

    settings: Settings
    app: Celery
    queues: tuple[Queue, ...] | None = None
    started: list[Any] = field(default_factory=list)  # the Celery WorkController
    announced: list[int] = field(default_factory=list)  # exit code a shutdown announced
    threads: list[Any] = field(default_factory=list)
    watchdog: StallWatchdog | None = None
    advertiser: Advertiser | None = None
    reconciler: ReconcilerThread | None = None

    def _consumed(self, sender: Any) -> tuple[Queue, ...]:
        if self.queues is not None:
            return self.queues
        names = [q.name for q in sender.app.amqp.queues.consume_from.values()]
        return tuple(Queue(n) for n in names if n in {q.value for q in Queue}) or tuple(Queue)

    def on_init(self, sender: Any) -> None:
        self.started.append(sender)
        node = str(getattr(sender, "hostname", "") or f"celery-{os.getpid()}")
        queues = self._consumed(sender)
        urls = resolve_urls(self.settings)
        self.reconciler = ReconcilerThread(self.settings, self.app, node)
        self.watchdog = StallWatchdog(self.settings, queues)
        self.advertiser = Advertiser(
            connect(urls.durable, name=f"{node}-advertiser"),
            Keys(self.settings.redis_prefix),
            node,
            [q.value for q in queues],
            self.settings.strategy_path,
        )

    def on_ready(self) -> None:
        if self.reconciler is None or self.watchdog is None or self.advertiser is None:
            return
        self.reconciler.start()
        self.watchdog.touch()
        self.watchdog.start()
        self.advertiser.start()

    def on_received(self) -> None:
        if self.watchdog is not None:
            self.watchdog.touch()

    def on_shutting_down(self, exitcode: int | None) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()  # from now on, waiting messages are expected
        if self.advertiser is not None:
            self.advertiser.stop(timeout=0)  # it takes no new job: not live for submitters
        self.announced.append(int(exitcode or 0))

    def on_shutdown(self) -> None:
        for service in (self.reconciler, self.watchdog, self.advertiser):
            if service is not None and service.is_alive():
                service.stop()


def install_worker_services(
    app: Celery, settings: Settings, *, queues: tuple[Queue, ...] | None = None
) -> WorkerServices:
    """Connect the worker's services to Celery's signals (see :class:`WorkerServices`).

    ``queues``: what the worker consumes (None: read from Celery at start, i.e. ``-Q`` or
    every queue of the app, interactive first).
    """
    services = WorkerServices(settings, app, queues)

    @signals.worker_init.connect(weak=False)
    def _init(sender: Any, **_: Any) -> None:
        services.on_init(sender)

    @signals.worker_ready.connect(weak=False)
    def _ready(**_: Any) -> None:
        services.on_ready()

    @signals.task_received.connect(weak=False)
    def _received(**_: Any) -> None:
        services.on_received()

    @signals.worker_process_init.connect(weak=False)
    def _warm_pool_process(**_: Any) -> None:
        try:
            warm_up()
        except Exception as exc:  # a cold first job is slower, not wrong
            log.warning("warm-up failed: %s", exc)

    @signals.worker_shutting_down.connect(weak=False)
    def _shutting_down(exitcode: int | None = None, **_: Any) -> None:
        services.on_shutting_down(exitcode)

    @signals.worker_shutdown.connect(weak=False)
    def _shutdown(**_: Any) -> None:
        services.on_shutdown()

    return services


def check_worker_settings(settings: Settings) -> None:
    """Fail fast, with a clear message, before a worker starts: the durable Redis must be safe
    and the store reachable; user strategies load before the pool forks."""
    urls = resolve_urls(settings)
    durable = connect(urls.durable, name="traderunner-worker-check")
    check_durable(durable, urls.durable, allow_unsafe=settings.allow_unsafe_redis)
    durable.close()
    Store.from_settings(settings).close()
    load_user_strategies(settings.strategy_dirs)


def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    queues: tuple[Queue, ...] = (Queue.INTERACTIVE, Queue.BATCH),
    loglevel: str = "INFO",
    pool: str = "prefork",
    name: str | None = None,
) -> int:
    """Run a worker in the foreground until TERM/INT (warm shutdown); returns its exit code.

    0 after a warm shutdown. Non-zero when Celery stopped on an unrecoverable error or a cold
    shutdown (QUIT, a second TERM), so a supervisor (systemd ``Restart=on-failure``) restarts
    it. Celery's own ``worker_main`` drops that code and would always exit 0.
    """
    check_worker_settings(settings)
    host = socket.gethostname()
    node = name or f"traderunner-{os.getpid()}@{host}"
    app = build_app(settings, name=node)
    services = install_worker_services(app, settings, queues=queues)
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
    if not services.started:
        return 1  # Celery refused to build a worker; it has said why
    # An unrecoverable error sets exitcode; a cold shutdown (WorkerTerminate) loses it, but
    # its signal announced it.
    return int(services.started[-1].exitcode or 0) or max(services.announced, default=0)
