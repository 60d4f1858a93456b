"""The job client: what the CLI and the dashboard use to submit and watch work.

``JobClient.open(settings)`` builds its connections (store, durable Redis, a Celery app that
only publishes) and checks the durable Redis once. Everything it knows comes back from the
store and Redis, so a restarted dashboard sees every job again.
"""

from __future__ import annotations

import builtins
import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import redis
from celery import Celery

from traderunner.config import Settings
from traderunner.domain.jobs import JobKind, JobRecord, JobState, Queue
from traderunner.errors import RedisError, UserInputError
from traderunner.jobs.app import make_celery
from traderunner.jobs.board import JobBoard
from traderunner.jobs.queueing import enqueue, kombu_priority
from traderunner.jobs.runner import finish_parent
from traderunner.jobs.spec import BacktestSpec, NoopSpec, Spec, SweepSpec, spec_from_dict, validate
from traderunner.redisdb.connection import check_durable, connect, resolve_urls
from traderunner.redisdb.keys import JOB_CANCEL_TTL, Keys
from traderunner.store import Store

_DEFAULT_QUEUE = {
    JobKind.BACKTEST: Queue.INTERACTIVE,
    JobKind.NOOP: Queue.INTERACTIVE,
    JobKind.SWEEP: Queue.BATCH,
}


class JobClient:
    """Submit, list, follow, cancel and retry jobs. Connections are passed in (or built by
    :meth:`open`, which also closes them in :meth:`close`)."""

    def __init__(
        self, store: Store, durable: redis.Redis, keys: Keys, app: Celery, *, owns: bool = False
    ) -> None:
        self.store = store
        self.redis = durable
        self.keys = keys
        self.app = app
        self.board = JobBoard(store, durable, keys)
        self._owns = owns

    @classmethod
    def open(cls, settings: Settings, *, store: Store | None = None) -> JobClient:
        from traderunner.strategies import load_user_strategies

        load_user_strategies(settings.strategy_dirs)  # specs may name user strategies
        urls = resolve_urls(settings)
        durable = connect(urls.durable, name="traderunner-client")
        check_durable(durable, urls.durable, allow_unsafe=settings.allow_unsafe_redis)
        own_store = store is None
        client = cls(
            store or Store.from_settings(settings),
            durable,
            Keys(settings.redis_prefix),
            make_celery(settings, broker_url=urls.durable),
            owns=own_store,
        )
        return client

    def close(self) -> None:
        if self._owns:
            self.store.close()
        self.redis.close()
        self.app.close()

    def __enter__(self) -> JobClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- submitting --------------------------------------------------------------------------

    def submit(
        self,
        spec: Spec | Mapping[str, Any],
        *,
        queue: Queue | str | None = None,
        level: int = 0,
        owner: str = "",
    ) -> JobRecord:
        """Validate ``spec`` completely, record the job(s), then enqueue; return the record.

        Bad input raises a UserInputError subclass before anything is written or enqueued.
        ``queue`` defaults to interactive for backtests and batch for sweeps; ``level`` 0..4
        orders jobs within a queue (0 first).
        """
        if isinstance(spec, Mapping):
            spec = spec_from_dict(spec)
        if not isinstance(spec, BacktestSpec | SweepSpec | NoopSpec):
            raise UserInputError(f"not a job spec: {type(spec).__name__}")
        if not 0 <= int(level) <= 4:
            raise UserInputError(f"priority level must be 0..4 (0 first), got {level}")
        try:
            chosen = Queue(queue) if queue is not None else _DEFAULT_QUEUE[spec.kind]
        except ValueError:
            raise UserInputError(
                f"unknown queue {queue!r}: use {', '.join(q.value for q in Queue)}"
            ) from None
        checked = validate(spec, self.store)
        priority = kombu_priority(chosen, level)
        job_id = uuid.uuid4().hex
        base = spec.to_dict()
        if isinstance(spec, SweepSpec):
            parent = JobRecord(
                id=job_id,
                kind=JobKind.SWEEP,
                spec={
                    **base,
                    "combinations": len(checked.combos),
                    "skipped": checked.skipped,
                    "chunks": len(checked.chunks),
                },
                state=JobState.QUEUED,
                queue=chosen,
                priority=priority,
                owner=owner,
                message=f"{len(checked.combos)} combinations in {len(checked.chunks)} chunks",
            )
            children = []
            offset = 0
            for i, combos in enumerate(checked.chunks):
                child_spec = {k: v for k, v in base.items() if k not in ("grid", "kind")}
                child_spec.update(
                    {
                        "kind": JobKind.SWEEP_CHUNK.value,
                        "combos": list(combos),
                        "offset": offset,
                        "index": i,
                    }
                )
                offset += len(combos)
                children.append(
                    JobRecord(
                        id=f"{job_id}-{i:04d}",
                        kind=JobKind.SWEEP_CHUNK,
                        spec=child_spec,
                        state=JobState.QUEUED,
                        queue=chosen,
                        priority=priority,
                        owner=owner,
                        parent=job_id,
                    )
                )
            self.board.create([parent, *children])
            for child in children:
                self._enqueue(child)
            return parent
        record = JobRecord(
            id=job_id,
            kind=spec.kind,
            spec=base,
            state=JobState.QUEUED,
            queue=chosen,
            priority=priority,
            owner=owner,
        )
        self.board.create([record])
        self._enqueue(record)
        return record

    def _enqueue(self, record: JobRecord) -> None:
        try:
            enqueue(self.app, record)
        except Exception as exc:  # broker down: the row is recorded, the reconciler enqueues it
            self.board.progress(record.id, 0.0, f"not yet enqueued ({exc}); the reconciler will")

    # -- reading -----------------------------------------------------------------------------

    def status(self, job_id: str) -> JobRecord:
        record = self.board.get(job_id)
        if record is None:
            raise UserInputError(f"no job {job_id!r}: see `traderunner jobs list`")
        return record

    def list(
        self,
        *,
        states: builtins.list[JobState] | None = None,
        owner: str | None = None,
        kinds: builtins.list[JobKind] | None = None,
        limit: int = 50,
        include_chunks: bool = False,
    ) -> builtins.list[JobRecord]:
        """Jobs newest first; sweep chunks only when asked (they belong to their sweep)."""
        records = self.store.jobs.list(
            states=states, owner=owner, kinds=kinds, limit=limit, top_level=not include_chunks
        )
        return [self.board.with_live(record) for record in records]

    def children(self, job_id: str) -> builtins.list[JobRecord]:
        return self.store.jobs.list(parent=job_id, limit=None, newest_first=False)

    def result(self, job_id: str) -> dict[str, Any] | None:
        """What the job produced: a backtest's summary, a sweep's table; None until done."""
        record = self.status(job_id)
        if record.kind is JobKind.BACKTEST:
            saved = self.store.results.get(job_id)
            return dict(saved["summary"]) if saved else None
        return self.store.jobs.result(job_id)

    def follow(
        self, job_id: str, *, timeout: float | None = None, poll_s: float = 1.0
    ) -> Iterator[JobRecord]:
        """Yield the job's record on every change until it ends (or ``timeout`` passes).

        Events come from the job's channel; a poll every ``poll_s`` covers missed ones (a
        Redis restart drops subscribers).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            try:
                pubsub.subscribe(self.keys.job_events(job_id))
            except redis.RedisError:
                pubsub = None
            record = self.status(job_id)
            yield record
            last = (record.state, record.progress, record.message)
            while not record.state.terminal:
                if deadline is not None and time.monotonic() > deadline:
                    return
                try:
                    if pubsub is not None:
                        pubsub.get_message(timeout=poll_s)
                    else:
                        time.sleep(poll_s)
                except redis.RedisError:
                    pubsub = None
                    time.sleep(poll_s)
                record = self.status(job_id)
                now = (record.state, record.progress, record.message)
                if now != last:
                    last = now
                    yield record
        finally:
            if pubsub is not None:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()

    def wait(self, job_id: str, timeout: float = 60.0) -> JobRecord:
        """Block until the job ends; TimeoutError when it does not within ``timeout`` seconds."""
        record = self.status(job_id)
        for record in self.follow(job_id, timeout=timeout, poll_s=0.2):
            if record.state.terminal:
                return record
        raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f}s ({record.state})")

    # -- changing ----------------------------------------------------------------------------

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel: queued jobs never start; running jobs stop at their next check."""
        record = self.status(job_id)
        if record.state.terminal:
            return record
        targets = [record]
        if record.kind is JobKind.SWEEP:
            targets += [c for c in self.children(job_id) if not c.state.terminal]
        pipe = self.redis.pipeline(transaction=False)
        for target in targets:
            pipe.set(self.keys.job_cancel(target.id), "1", ex=JOB_CANCEL_TTL)
        pipe.execute()
        for target in targets:
            if target.kind is not JobKind.SWEEP:
                self.board.transition(
                    target.id,
                    JobState.CANCELLED,
                    expect=(JobState.QUEUED,),
                    message="cancelled before it started",
                )
        if record.kind is JobKind.SWEEP:
            finish_parent(self.store, self.board, job_id)
        return self.status(job_id)

    def retry(self, job_id: str) -> JobRecord:
        """Queue a failed or cancelled job again (for a sweep: its unfinished chunks)."""
        record = self.status(job_id)
        if record.state not in (JobState.FAILED, JobState.CANCELLED):
            raise UserInputError(
                f"job {job_id} is {record.state.value}; only failed or cancelled jobs can be "
                "retried"
            )
        targets = [record]
        if record.kind is JobKind.SWEEP:
            targets = [c for c in self.children(job_id) if c.state is not JobState.SUCCEEDED]
        self.redis.delete(*[self.keys.job_cancel(t.id) for t in [record, *targets]])
        if record.kind is JobKind.SWEEP:
            self.board.transition(
                job_id,
                JobState.QUEUED,
                expect=(record.state,),
                error="",
                progress=0.0,
                message="retried",
                finished_at=None,
            )
        for target in targets:
            if self.board.transition(
                target.id,
                JobState.QUEUED,
                expect=(JobState.FAILED, JobState.CANCELLED),
                error="",
                attempts=0,
                progress=0.0,
                message="retried",
                finished_at=None,
            ):
                self._enqueue(self.store.jobs.get(target.id) or target)
        return self.status(job_id)

    def ping(self) -> None:
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise RedisError(f"the durable Redis does not answer: {exc}") from None


__all__ = ["JobClient"]
