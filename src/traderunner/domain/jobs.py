"""The job model's pure values: kinds, states and the record of one job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    BACKTEST = "backtest"
    SWEEP = "sweep"
    SWEEP_CHUNK = "sweep_chunk"
    NOOP = "noop"  # a trivial job: health canary and the job-layer overhead benchmark


class JobState(StrEnum):
    """A job's life: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED.

    A RUNNING job whose worker dies goes back to QUEUED (the reconciler re-enqueues it) until
    its attempts run out. FAILED and CANCELLED jobs can be retried (back to QUEUED).
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class Queue(StrEnum):
    """Celery queues; workers serve ``interactive`` before ``batch``."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as the store (the record) and the Redis hash (the live copy) describe it."""

    id: str
    kind: JobKind
    spec: dict[str, Any]
    state: JobState
    queue: Queue
    priority: int = 0
    owner: str = ""
    progress: float = 0.0
    message: str = ""
    attempts: int = 0
    worker: str = ""
    error: str = ""
    parent: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (ISO-8601 times)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            out[name] = value
        return out
