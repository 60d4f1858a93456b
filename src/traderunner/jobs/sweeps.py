"""A sweep's parent job, kept up to date from its chunks (workers, the client, the reconciler).

A sweep is one parent job (kind ``sweep``) fanned out into chunk jobs (``sweep_chunk``).
:func:`finish_parent` is called whenever a chunk ends, when a sweep is cancelled and by every
reconciler pass: it reports progress, fails the sweep when a chunk failed (cancelling the
rest), and the call that finds every chunk succeeded assembles the sweep table. It lives apart
from the runner so the client, which imports nothing only workers need, can call it too.
"""

from __future__ import annotations

from traderunner.domain.jobs import TERMINAL, JobRecord, JobState
from traderunner.domain.period import Period
from traderunner.domain.runs import RunOrigin
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
            message=_how_far(store, parent, "cancelled after", done, total),
        )
        return JobState.CANCELLED
    if done < total:
        board.progress(parent_id, done / max(total, 1), f"{done}/{total} chunks")
        return None
    _save_sweep_run(store, parent, total)
    board.transition(
        parent_id,
        JobState.SUCCEEDED,
        expect=(JobState.QUEUED, JobState.RUNNING),
        progress=1.0,
        message=f"{int(parent.spec.get('combinations') or 0)} combinations in {total} chunks",
    )
    return JobState.SUCCEEDED


def _how_far(store: Store, parent: JobRecord, what: str, done: int, total: int) -> str:
    """``cancelled after 3 of 8 chunks (1,200 of 3,200 combinations)``."""
    finished = store.jobs.list(parent=parent.id, states=[JobState.SUCCEEDED], limit=None)
    combos = sum(len(c.spec.get("combos") or ()) for c in finished)
    of = int(parent.spec.get("combinations") or 0)
    return f"{what} {done} of {total} chunks ({combos:,} of {of:,} combinations)"


def _save_sweep_run(store: Store, parent: JobRecord, total: int) -> None:
    """Assemble the chunks' rows (in combination order) into the sweep's run; the chunks'
    rows are dropped in the same transaction. Insert-if-absent: a second caller writes nothing."""
    import pyarrow as pa

    from traderunner.engine.options import BacktestOptions

    children = store.jobs.list(parent=parent.id, limit=None, newest_first=False)
    ids = [c.id for c in children]
    payloads = store.jobs.results(ids)
    tables = store.jobs.tables(ids)
    order = sorted(tables, key=lambda i: int(payloads.get(i, {}).get("offset", 0)))
    parts = [tables[i].replace_schema_metadata(None) for i in order]
    rows = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
    spec = parent.spec
    sources: dict[str, str] = {}
    for payload in payloads.values():
        sources.update(payload.get("sources") or {})
    store.runs.save_sweep(
        rows,
        owner=parent.owner,
        origin=RunOrigin.JOB,
        run_id=parent.id,
        strategy=str(spec.get("strategy") or ""),
        symbols=list(spec.get("symbols") or ()),
        timeframe=str(spec.get("timeframe") or ""),
        grid=dict(spec.get("grid") or {}),
        options=BacktestOptions.from_kwargs(**dict(spec.get("options") or {})).to_dict(),
        name=str(spec.get("name") or ""),
        period=Period.parse(spec.get("start"), spec.get("end")).describe(),
        summary={
            "chunks": total,
            "skipped": int(spec.get("skipped", 0)),
            "compute_s": sum(float(p.get("elapsed_s", 0.0)) for p in payloads.values()),
            "sources": sources,
        },
        drop_job_results=ids,
    )
