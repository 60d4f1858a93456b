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
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis
from celery import Celery

from traderunner.config import Settings
from traderunner.domain.jobs import JobKind, JobRecord, JobState, Queue
from traderunner.domain.runs import Page, ensure_may_change
from traderunner.errors import (
    RedisError,
    RedisFullError,
    StrategyUnavailableError,
    UnsafeRedisError,
    UserInputError,
)
from traderunner.jobs.app import make_celery
from traderunner.jobs.board import JobBoard
from traderunner.jobs.queueing import enqueue, kombu_priority
from traderunner.jobs.spec import BacktestSpec, NoopSpec, Spec, SweepSpec, spec_from_dict, validate
from traderunner.jobs.sweeps import finish_parent
from traderunner.jobs.workers import StrategyCheck, WorkerInfo, check_strategy, live_workers
from traderunner.redisdb.connection import check_durable, connect, resolve_urls
from traderunner.redisdb.keys import JOB_CANCEL_TTL, Keys
from traderunner.store import Store
from traderunner.strategies import get_strategy, load_user_strategies

_DEFAULT_QUEUE = {
    JobKind.BACKTEST: Queue.INTERACTIVE,
    JobKind.NOOP: Queue.INTERACTIVE,
    JobKind.SWEEP: Queue.BATCH,
}


def _is_oom(exc: BaseException) -> bool:
    """A Redis OOM refusal, however kombu/redis-py wrapped it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, redis.exceptions.OutOfMemoryError) or "OOM command not allowed" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class JobClient:
    """Submit, list, follow, cancel and retry jobs. Connections are passed in (or built by
    :meth:`open`, which also closes them in :meth:`close`)."""

    def __init__(
        self,
        store: Store,
        durable: redis.Redis,
        keys: Keys,
        app: Celery,
        *,
        owns: bool = False,
        live: bool = True,
    ) -> None:
        self.store = store
        self.redis = durable
        self.keys = keys
        self.app = app
        self.board = JobBoard(store, durable, keys)
        self.live = live  # False: the durable Redis did not answer; records from the store only
        self._owns = owns

    @classmethod
    def open(
        cls, settings: Settings, *, store: Store | None = None, require_redis: bool = True
    ) -> JobClient:
        """Connect to the store and the durable Redis (checked once).

        ``require_redis=False`` is for readers (``jobs list``/``show``/``follow``): when the
        durable Redis does not answer, the client still opens, with ``live`` False, and reads
        the store's records only (no live progress). Such a client is for reading.
        """
        load_user_strategies(settings.strategy_dirs)  # specs may name user strategies
        urls = resolve_urls(settings)
        durable = connect(urls.durable, name="traderunner-client")
        live = True
        try:
            check_durable(durable, urls.durable, allow_unsafe=settings.allow_unsafe_redis)
        except UnsafeRedisError:
            raise
        except RedisError:
            if require_redis:
                raise
            durable.close()
            # No retries: every read of a live hash fails at once and falls back to the store.
            durable = connect(urls.durable, name="traderunner-client", retry=None)
            live = False
        own_store = store is None
        return cls(
            store or Store.from_settings(settings),
            durable,
            Keys(settings.redis_prefix),
            make_celery(settings, broker_url=urls.durable),
            owns=own_store,
            live=live,
        )

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

        Bad input raises a UserInputError subclass before anything is written or enqueued;
        so does a strategy that no live worker has (StrategyUnavailableError, saying how to
        start one that has it). With no worker live the job is queued all the same:
        :meth:`strategy_check` tells the caller so. ``queue`` defaults to interactive for
        backtests and batch for sweeps; ``level`` 0..4 orders jobs within a queue (0 first).
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
        if not isinstance(spec, NoopSpec):
            check = self.strategy_check(spec.strategy)
            if check is not None and check.refused:
                raise StrategyUnavailableError(check.refusal())
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
            try:
                for child in children:
                    self._enqueue(child)
            except RedisFullError:
                self._withdraw([parent, *children])
                raise
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
        try:
            self._enqueue(record)
        except RedisFullError:
            self._withdraw([record])
            raise
        return record

    def _enqueue(self, record: JobRecord) -> None:
        try:
            enqueue(self.app, record)
        except Exception as exc:
            if _is_oom(exc):
                # The broker is up but full (noeviction at maxmemory): the reconciler could
                # not enqueue it either, so the submission fails now, loudly, and is withdrawn.
                raise RedisFullError(
                    "the durable Redis is full (its maxmemory is reached and it evicts nothing): "
                    "the job was not submitted; free memory there or raise its maxmemory "
                    "(traderunner doctor shows its state), then submit again"
                ) from None
            # Broker down: the row is recorded, the reconciler enqueues it.
            self.board.progress(record.id, 0.0, f"not yet enqueued ({exc}); the reconciler will")

    def _withdraw(self, records: builtins.list[JobRecord]) -> None:
        """Remove a submission that could not be enqueued: rows, then hashes (DEL frees
        memory, so a full server allows it). A message already enqueued for one of them is
        dropped by the worker that takes it (its job is unknown)."""
        ids = [r.id for r in records]
        self.store.jobs.withdraw(list(reversed(ids)))
        with contextlib.suppress(redis.RedisError):
            self.redis.delete(*[self.keys.job(i) for i in ids])

    # -- workers -----------------------------------------------------------------------------

    def workers(self) -> builtins.list[WorkerInfo]:
        """The live workers and the strategies each has (see jobs/workers.py)."""
        try:
            return live_workers(self.redis, self.keys)
        except redis.RedisError as exc:
            raise RedisError(f"the durable Redis does not answer: {exc}") from None

    def strategy_check(self, strategy: str) -> StrategyCheck | None:
        """What the live workers know of ``strategy`` (None when Redis cannot say)."""
        cls = get_strategy(strategy)
        try:
            return check_strategy(self.redis, self.keys, cls)
        except redis.RedisError:
            return None  # the job is recorded all the same; a worker will tell

    # -- reading -----------------------------------------------------------------------------

    def status(self, job_id: str) -> JobRecord:
        record = self.board.get(job_id)
        if record is None:
            raise UserInputError(f"no job {job_id!r}: see `traderunner jobs list`")
        return record

    def resolve(self, text: str) -> str:
        """The id of the one job whose id is ``text`` or starts with it (as git takes a commit
        prefix); a one-line UserInputError for an unknown or ambiguous prefix."""
        return self.store.jobs.resolve(text)

    def list(
        self,
        *,
        states: builtins.list[JobState] | None = None,
        owner: str | None = None,
        kinds: builtins.list[JobKind] | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        include_chunks: bool = False,
    ) -> Page[JobRecord]:
        """One page of jobs matching every filter given, newest first, with the total count.

        Sweep chunks only when asked (they belong to their sweep). The live progress of the
        page's unfinished jobs is read from Redis in one pipelined round trip.
        """
        page = self.store.jobs.page(
            states=states,
            owner=owner,
            kinds=kinds,
            strategy=strategy,
            symbol=symbol,
            created_from=created_from,
            created_before=created_before,
            limit=limit,
            offset=offset,
            top_level=not include_chunks,
        )
        return replace(page, items=self.board.with_live_many(page.items))

    def children(self, job_id: str) -> builtins.list[JobRecord]:
        return self.store.jobs.list(parent=job_id, limit=None, newest_first=False)

    def result(self, job_id: str) -> dict[str, Any] | None:
        """What the job produced, as its local run prints it with ``--json``: a backtest's
        summary (with its trade list), a sweep's summary and rows; None until it is saved."""
        record = self.status(job_id)
        if record.kind in (JobKind.BACKTEST, JobKind.SWEEP):
            return self.store.runs.document(job_id)
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

    def cancel(self, job_id: str, *, actor: str, is_admin: bool = False) -> JobRecord:
        """Cancel: queued jobs never start; running jobs stop at their next check.

        ``actor`` is the user asking; another user's job is refused unless ``is_admin``.
        """
        record = self.status(job_id)
        ensure_may_change(record.owner, actor, is_admin=is_admin, what=f"job {job_id}")
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

    def retry(self, job_id: str, *, actor: str, is_admin: bool = False) -> JobRecord:
        """Queue a failed or cancelled job again (for a sweep: its unfinished chunks).

        ``actor`` is the user asking; another user's job is refused unless ``is_admin``.
        """
        record = self.status(job_id)
        ensure_may_change(record.owner, actor, is_admin=is_admin, what=f"job {job_id}")
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
