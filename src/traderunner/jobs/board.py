"""The job board: the one place a job's state changes, in the store and in Redis together.

* the **store** row is the record: written on every state change (queued, running, succeeded,
  failed, cancelled) — so nothing is lost when Redis is;
* the **Redis hash** ``job:{id}`` is the live copy, with progress between state changes; the
  dashboard and ``jobs follow`` read it (falling back to the store when it is gone);
* every change is **PUBLISHed** on ``events:job:{id}`` and ``events:jobs`` as one JSON event
  ``{"job", "state", "progress", "message", "ts"}``.

Order: store first, then the hash, then the event; a reader that got an event can always read
a state at least that new.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import redis

from traderunner.domain.jobs import JobKind, JobRecord, JobState
from traderunner.redisdb.keys import JOB_STATE_TTL, Keys
from traderunner.store import Store

log = logging.getLogger(__name__)

_HASH_FIELDS = ("state", "progress", "message", "attempts", "worker", "error", "kind", "parent")


def _hash_of(record: JobRecord) -> dict[Any, Any]:
    return {
        "state": record.state.value,
        "progress": f"{record.progress:.6f}",
        "message": record.message,
        "attempts": str(record.attempts),
        "worker": record.worker,
        "error": record.error,
        "kind": record.kind.value,
        "parent": record.parent or "",
        "updated": f"{time.time():.6f}",
    }


class JobBoard:
    """State changes and progress of jobs. Connections are passed in."""

    def __init__(self, store: Store, durable: redis.Redis, keys: Keys) -> None:
        self.store = store
        self.redis = durable
        self.keys = keys

    # -- writing -----------------------------------------------------------------------------

    def create(self, records: Sequence[JobRecord]) -> None:
        """Record new jobs: store rows in one transaction, then their hashes."""
        self.store.jobs.insert(records)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for record in records:
                key = self.keys.job(record.id)
                pipe.hset(key, mapping=_hash_of(record))
                pipe.expire(key, JOB_STATE_TTL)
            pipe.execute()
        except redis.RedisError as exc:
            # The rows are the record; the hashes are rebuilt on the next change.
            log.warning("could not write job hashes (%s); the store has the records", exc)

    def transition(
        self,
        job_id: str,
        state: JobState,
        *,
        expect: Iterable[JobState] | None = None,
        result: tuple[JobKind, dict[str, Any], Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Move a job to ``state`` (compare-and-set on ``expect``); store, hash, event.

        ``result`` is stored in the same transaction as the state (see JobRepository.update).
        Returns False (and changes nothing) when the job's state was not one of ``expect``.
        A failed job's message is its error (unless a message is given).
        """
        now = datetime.now(UTC)
        if state is JobState.FAILED and fields.get("error") and "message" not in fields:
            fields["message"] = fields["error"]
        if state is JobState.RUNNING:
            fields.setdefault("started_at", now)
        if state.terminal:
            fields.setdefault("finished_at", now)
        changed = self.store.jobs.update(
            job_id, expect=expect, result=result, state=state, **fields
        )
        if not changed:
            return False
        live: dict[Any, Any] = {"state": state.value, "updated": f"{time.time():.6f}"}
        for name in _HASH_FIELDS:
            if name in fields and name != "state":
                value = fields[name]
                live[name] = f"{value:.6f}" if isinstance(value, float) else str(value)
        self._live(job_id, live)
        return True

    def start(self, job_id: str, worker: str) -> JobRecord | None:
        """QUEUED/RUNNING -> RUNNING with one more attempt, in the store then live.

        Returns the started record, or None when the job is unknown or not runnable.
        """
        record = self.store.jobs.start(job_id, worker)
        if record is None:
            return None
        self._live(
            job_id,
            {
                "state": record.state.value,
                "attempts": str(record.attempts),
                "worker": worker,
                "error": "",
                "message": record.message,
                "updated": f"{time.time():.6f}",
            },
        )
        return record

    def progress(self, job_id: str, fraction: float, message: str = "") -> None:
        """Progress between state changes: Redis only (hash + event), never the store."""
        self._live(
            job_id,
            {
                "progress": f"{min(max(fraction, 0.0), 1.0):.6f}",
                "message": message,
                "updated": f"{time.time():.6f}",
            },
        )

    def _live(self, job_id: str, mapping: dict[Any, Any]) -> None:
        key = self.keys.job(job_id)
        event = json.dumps({"job": job_id, **mapping, "ts": time.time()})
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, JOB_STATE_TTL)
            pipe.publish(self.keys.job_events(job_id), event)
            pipe.publish(self.keys.jobs_events(), event)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("job %s: live state not written (%s); the store has it", job_id, exc)

    # -- reading -----------------------------------------------------------------------------

    def live(self, job_id: str) -> dict[str, str]:
        """The Redis hash of a job ({} when gone or Redis is down)."""
        try:
            data = cast(dict[Any, Any], self.redis.hgetall(self.keys.job(job_id)))
        except redis.RedisError:
            return {}
        return _text_map(data)

    def get(self, job_id: str) -> JobRecord | None:
        """The record from the store with live progress merged in (see :meth:`with_live`)."""
        record = self.store.jobs.get(job_id)
        return None if record is None else self.with_live(record)

    def with_live(self, record: JobRecord) -> JobRecord:
        """``record`` with the hash's progress and message when the hash agrees on its state.

        The store wins on state: a terminal store state is never overridden by a stale hash,
        and a hash that disagrees (lost, or behind) is ignored.
        """
        return self.with_live_many([record])[0]

    def with_live_many(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        """:meth:`with_live` for many records, reading their hashes in one pipelined round trip
        (only the jobs that have not ended have a live state worth reading)."""
        open_ = [r for r in records if not r.state.terminal]
        if not open_:
            return list(records)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for record in open_:
                pipe.hgetall(self.keys.job(record.id))
            hashes = pipe.execute()
        except redis.RedisError:
            return list(records)
        live = {r.id: _text_map(h) for r, h in zip(open_, hashes, strict=True)}
        return [_merged(record, live.get(record.id, {})) for record in records]

    def cancel_requested(self, job_id: str) -> bool:
        try:
            return bool(self.redis.exists(self.keys.job_cancel(job_id)))
        except redis.RedisError:
            return False


def _text_map(data: Any) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in dict(data or {}).items()
    }


def _merged(record: JobRecord, live: dict[str, str]) -> JobRecord:
    if record.state.terminal or not live or live.get("state") != record.state.value:
        return record
    return replace(
        record,
        progress=float(live.get("progress") or record.progress),
        message=live.get("message", record.message),
    )
