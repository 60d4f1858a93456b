"""A sweep's parent job, kept up to date from its chunks (workers, the client, the reconciler).

A sweep is one parent job (kind ``sweep``) fanned out into chunk jobs (``sweep_chunk``).
:func:`finish_parent` is called whenever a chunk ends, when a sweep is cancelled and by every
reconciler pass: it reports progress, fails the sweep when a chunk failed (cancelling the
rest), and the call that finds every chunk succeeded assembles the sweep table. It lives apart
from the runner so the client, which imports nothing only workers need, can call it too.
"""

from __future__ import annotations

from typing import Any

from traderunner.domain.jobs import TERMINAL, JobKind, JobState
from traderunner.jobs.board import JobBoard
from traderunner.redisdb.keys import JOB_CANCEL_TTL
from traderunner.store import Store


def finish_parent(store: Store, board: JobBoard, parent_id: str) -> JobState | None:
    """Update a sweep from its chunks; the call that sees them all done writes the table.

    Idempotent and safe to call concurrently (the table is insert-if-absent and the final
    transition is a compare-and-set). Returns the parent's new state if it ended.
    """
    parent = store.jobs.get(parent_id)
    if parent is None or parent.state in TERMINAL:
        return None
    counts = store.jobs.child_states(parent_id)
    total = sum(counts.values())
    done = counts.get(JobState.SUCCEEDED, 0)
    failed = counts.get(JobState.FAILED, 0)
    cancelled = counts.get(JobState.CANCELLED, 0)
    if failed:
        errors = [
            c.error for c in store.jobs.list(parent=parent_id, states=[JobState.FAILED], limit=1)
        ]
        for child in store.jobs.list(
            parent=parent_id, states=[JobState.QUEUED, JobState.RUNNING], limit=None
        ):
            board.redis.set(board.keys.job_cancel(child.id), "1", ex=JOB_CANCEL_TTL)
        board.transition(
            parent_id,
            JobState.FAILED,
            expect=(JobState.QUEUED, JobState.RUNNING),
            error=f"a chunk failed: {errors[0] if errors else 'unknown error'}",
        )
        return JobState.FAILED
    if cancelled and done + cancelled == total:
        board.transition(
            parent_id,
            JobState.CANCELLED,
            expect=(JobState.QUEUED, JobState.RUNNING),
            message="cancelled",
        )
        return JobState.CANCELLED
    if done < total:
        board.progress(parent_id, done / max(total, 1), f"{done}/{total} chunks")
        return None
    children = store.jobs.list(parent=parent_id, limit=None, newest_first=False)
    payloads = store.jobs.results([c.id for c in children])
    rows: list[dict[str, Any]] = []
    for payload in sorted(payloads.values(), key=lambda p: int(p.get("offset", 0))):
        rows.extend(payload.get("rows", []))
    store.jobs.save_result(
        parent_id,
        JobKind.SWEEP,
        {
            "rows": rows,
            "combinations": len(rows),
            "chunks": total,
            "skipped": int(parent.spec.get("skipped", 0)),
            "compute_s": sum(float(p.get("elapsed_s", 0.0)) for p in payloads.values()),
        },
    )
    board.transition(
        parent_id,
        JobState.SUCCEEDED,
        expect=(JobState.QUEUED, JobState.RUNNING),
        progress=1.0,
        message=f"{len(rows)} combinations in {total} chunks",
    )
    return JobState.SUCCEEDED
