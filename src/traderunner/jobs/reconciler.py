"""The reconciler: re-enqueue what the broker lost, finish what workers left behind.

The store is the record; Redis can lose its last second (AOF ``everysec``) and a worker can
die holding a message it will never ack (kombu restores those only after the visibility
timeout, hours later). One pass, under a cluster-wide lock so only one process runs it at a
time:

* a **queued** job that no queue list holds and whose record has not changed for
  ``reconcile_grace`` seconds is enqueued again, unless it waits for a moment
  (``Keys.job_wait``: its fetch found the provider's quota spent), which is then enqueued once
  that moment passed;
* a **running** job whose heartbeat expired (its worker died) goes back to queued and is
  enqueued again (its attempts were counted when it started; the runner fails it once they
  exceed ``job_max_attempts``);
* a running or queued **sweep** whose chunks have all ended is finished.

Enqueueing twice is harmless: a delivery first claims the job and drops itself when another
worker holds it or the result is already recorded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from celery import Celery

from traderunner.config import Settings
from traderunner.domain.jobs import JobKind, JobState
from traderunner.jobs.board import JobBoard
from traderunner.jobs.queueing import enqueue, queued_job_ids
from traderunner.jobs.sweeps import finish_parent
from traderunner.redisdb.keys import RECONCILER_LOCK_TTL, Keys
from traderunner.redisdb.scripts import RELEASE_IF_HELD
from traderunner.store import Store

log = logging.getLogger(__name__)

RUNNABLE = (JobKind.BACKTEST, JobKind.SWEEP_CHUNK, JobKind.NOOP)


@dataclass(slots=True)
class ReconcileReport:
    requeued: list[str] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)
    finished_parents: list[str] = field(default_factory=list)
    skipped_locked: bool = False


def reconcile_once(
    settings: Settings,
    store: Store,
    durable: redis.Redis,
    keys: Keys,
    app: Celery,
    *,
    owner: str = "reconciler",
) -> ReconcileReport:
    """One reconciler pass (see the module docstring)."""
    report = ReconcileReport()
    lock = keys.reconciler_lock()
    if not durable.set(lock, owner, nx=True, ex=RECONCILER_LOCK_TTL):
        report.skipped_locked = True
        return report
    board = JobBoard(store, durable, keys)
    try:
        cutoff = datetime.now(UTC) - timedelta(seconds=settings.reconcile_grace)
        held = queued_job_ids(durable, keys)
        for job in store.jobs.list(states=[JobState.QUEUED], kinds=RUNNABLE, limit=None):
            if job.id in held or (job.updated_at and job.updated_at > cutoff):
                continue
            if durable.exists(keys.job_heartbeat(job.id)):
                continue  # a worker just claimed it
            if durable.exists(keys.job_wait(job.id)):
                continue  # it waits for a moment (a quota reset): enqueued once that passed
            enqueue(app, job)
            report.requeued.append(job.id)
        for job in store.jobs.list(states=[JobState.RUNNING], kinds=RUNNABLE, limit=None):
            if durable.exists(keys.job_heartbeat(job.id)):
                continue
            started = job.started_at or job.updated_at
            if started and started > datetime.now(UTC) - timedelta(
                seconds=settings.job_heartbeat_ttl
            ):
                continue  # its first heartbeat may not be written yet
            if board.transition(
                job.id,
                JobState.QUEUED,
                expect=(JobState.RUNNING,),
                message=f"re-enqueued: worker {job.worker or '?'} was lost",
            ):
                enqueue(app, job)
                report.revived.append(job.id)
        for parent in store.jobs.list(
            states=[JobState.QUEUED, JobState.RUNNING], kinds=[JobKind.SWEEP], limit=None
        ):
            if finish_parent(store, board, parent.id) is not None:
                report.finished_parents.append(parent.id)
    finally:
        with contextlib.suppress(redis.RedisError):  # else it expires on its own
            durable.eval(RELEASE_IF_HELD, 1, lock, owner)
    if report.requeued or report.revived or report.finished_parents:
        log.warning(
            "reconciler: re-enqueued %d queued and %d orphaned running jobs, finished %d sweeps",
            len(report.requeued),
            len(report.revived),
            len(report.finished_parents),
        )
    return report


class ReconcilerThread(threading.Thread):
    """Runs :func:`reconcile_once` every ``settings.reconcile_interval`` seconds until stopped.

    It builds its own store and Redis connections (in the worker's main process, after the
    pool has forked), so it never shares a connection with a task.
    """

    def __init__(self, settings: Settings, app: Celery, name: str) -> None:
        super().__init__(name="traderunner-reconciler", daemon=True)
        self.settings = settings
        self.app = app
        self.owner = name
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        from traderunner.redisdb.connection import connect, resolve_urls

        store = Store.from_settings(self.settings)
        durable = connect(resolve_urls(self.settings).durable, name=f"{self.owner}-reconciler")
        keys = Keys(self.settings.redis_prefix)
        try:
            while not self._stop_event.is_set():
                try:
                    reconcile_once(self.settings, store, durable, keys, self.app, owner=self.owner)
                except Exception as exc:  # keep reconciling through Redis/store outages
                    log.warning("reconciler pass failed: %s", exc)
                self._stop_event.wait(self.settings.reconcile_interval)
        finally:
            store.close()
            durable.close()
