"""Job records and job results: ``store.jobs``.

The store is the record of every job: a row is written (state ``queued``) *before* its message
is enqueued, and updated on every state change, so a reconciler can re-enqueue whatever the
broker lost and a restarted dashboard finds every job again. Progress between state changes
lives in Redis only.

``job_results`` holds what a job produced that is not a run: a sweep chunk's rows (a Parquet
table in ``data``, until its sweep's run is written) and a no-op's echo. Backtests and finished
sweeps are runs (``store.runs``) under the job's id. Both writes are insert-if-absent, so a job
that runs twice records one result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from traderunner.domain.jobs import JobKind, JobRecord, JobState, Queue
from traderunner.domain.runs import Page
from traderunner.errors import DataRangeError
from traderunner.store import tables as codec
from traderunner.store.query import CANDIDATE_LIMIT, check_prefix, json_array_contains, one_match
from traderunner.store.schema import job_results as results_table
from traderunner.store.schema import jobs as jobs_table

if TYPE_CHECKING:
    import pyarrow as pa

    from traderunner.store.store import Store

_LISTING = "traderunner jobs list"

_TEXT_DEFAULTS = {"message": "", "worker": "", "error": "", "owner": ""}

# Statements are built once and reused with bound parameters: building an UPDATE costs more
# CPU than running it on SQLite, and jobs change state several times each.
_UPDATES: dict[tuple[tuple[str, ...], bool], Any] = {}
_GET = sa.select(jobs_table).where(jobs_table.c.id == sa.bindparam("_id"))
_START = (
    jobs_table.update()
    .where(
        jobs_table.c.id == sa.bindparam("_id"),
        jobs_table.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
    )
    .values(
        state=JobState.RUNNING.value,
        attempts=jobs_table.c.attempts + 1,
        worker=sa.bindparam("_worker"),
        error="",
        message="started",
        started_at=sa.bindparam("_now"),
        updated_at=sa.bindparam("_now"),
    )
)
_START_RETURNING = _START.returning(*jobs_table.c)
# RETURNING tells whether a row was written (psycopg's rowcount is -1 for ON CONFLICT DO NOTHING).
_RESULT_INSERTS: dict[str, Any] = {
    "sqlite": sqlite.insert(results_table)
    .on_conflict_do_nothing()
    .returning(results_table.c.job_id),
    "postgresql": postgresql.insert(results_table)
    .on_conflict_do_nothing()
    .returning(results_table.c.job_id),
}


def _update_statement(fields: tuple[str, ...], with_expect: bool) -> Any:
    key = (fields, with_expect)
    stmt = _UPDATES.get(key)
    if stmt is None:
        stmt = jobs_table.update().where(jobs_table.c.id == sa.bindparam("_id"))
        if with_expect:
            stmt = stmt.where(jobs_table.c.state.in_(sa.bindparam("_expect", expanding=True)))
        stmt = stmt.values({name: sa.bindparam(f"v_{name}") for name in fields})
        _UPDATES[key] = stmt
    return stmt


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def record_from_row(row: sa.RowMapping) -> JobRecord:
    return JobRecord(
        id=row["id"],
        kind=JobKind(row["kind"]),
        spec=dict(row["spec"] or {}),
        state=JobState(row["state"]),
        queue=Queue(row["queue"]),
        priority=int(row["priority"]),
        owner=row["owner"],
        progress=float(row["progress"]),
        message=row["message"],
        attempts=int(row["attempts"]),
        worker=row["worker"],
        error=row["error"],
        parent=row["parent"],
        created_at=_aware(row["created_at"]),
        started_at=_aware(row["started_at"]),
        finished_at=_aware(row["finished_at"]),
        updated_at=_aware(row["updated_at"]),
    )


class JobRepository:
    """``store.jobs``: insert, update, read and list job records; save and read job results."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def insert(self, records: Sequence[JobRecord]) -> None:
        """Write new job records in one transaction (parents before children)."""
        if not records:
            return
        now = _now()
        rows = [
            {
                "id": r.id,
                "kind": r.kind.value,
                "state": r.state.value,
                "queue": r.queue.value,
                "priority": r.priority,
                "owner": r.owner,
                "spec": r.spec,
                "progress": r.progress,
                "message": r.message,
                "attempts": r.attempts,
                "worker": r.worker,
                "error": r.error,
                "parent": r.parent,
                "created_at": r.created_at or now,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "updated_at": now,
            }
            for r in records
        ]
        with self._store.transaction("write job records") as conn:
            conn.execute(jobs_table.insert(), rows)

    def withdraw(self, job_ids: Sequence[str]) -> int:
        """Delete job records that never ran (a submission that could not be enqueued).

        Only rows still ``queued`` with no attempt are deleted, children before parents, in
        one transaction; returns how many went. Anything a worker already took stays.
        """
        if not job_ids:
            return 0
        with self._store.transaction("withdraw job records") as conn:
            found = conn.execute(
                jobs_table.delete().where(
                    jobs_table.c.id.in_(list(job_ids)),
                    jobs_table.c.state == JobState.QUEUED.value,
                    jobs_table.c.attempts == 0,
                )
            )
        return int(found.rowcount or 0)

    def update(
        self,
        job_id: str,
        *,
        expect: Iterable[JobState] | None = None,
        result: tuple[JobKind, Mapping[str, Any], Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Update fields of one job; with ``expect`` only if its state is one of those.

        Returns whether a row changed (False: unknown id, or the state was not expected —
        a compare-and-set that keeps concurrent deliveries from undoing each other). With
        ``result`` the job's result is inserted (unless one exists) in the same transaction,
        so a finished job and its result are written together or not at all.
        """
        values = {
            k: (v.value if isinstance(v, JobState | Queue | JobKind) else v)
            for k, v in fields.items()
        }
        values["updated_at"] = _now()
        stmt = jobs_table.update().where(jobs_table.c.id == job_id).values(**values)
        if expect is not None:
            stmt = stmt.where(jobs_table.c.state.in_([s.value for s in expect]))
        with self._store.transaction(f"update job {job_id}") as conn:
            changed = conn.execute(stmt).rowcount > 0
            if changed and result is not None:
                insert = _RESULT_INSERTS.get(self._store.dialect)
                if insert is not None:
                    conn.execute(insert, self._result_row(job_id, *result))
                else:  # pragma: no cover - backends without ON CONFLICT: check, then insert
                    found = conn.execute(
                        sa.select(results_table.c.job_id).where(results_table.c.job_id == job_id)
                    ).first()
                    if not found:
                        conn.execute(results_table.insert(), self._result_row(job_id, *result))
            return changed

    def start(self, job_id: str, worker: str) -> JobRecord | None:
        """Compare-and-set a queued or running job to running with one more attempt.

        One ``UPDATE ... RETURNING`` (SQLite >= 3.35, PostgreSQL): the worker learns the job's
        record and starts it in one statement. None when the job is unknown or has ended.
        """
        params = {"_id": job_id, "_worker": worker, "_now": _now()}
        with self._store.transaction(f"start job {job_id}") as conn:
            if self._store.engine.dialect.update_returning:
                row = conn.execute(_START_RETURNING, params).mappings().first()
            else:  # pragma: no cover - backends without UPDATE ... RETURNING
                changed = conn.execute(_START, params).rowcount > 0
                row = conn.execute(_GET, params).mappings().first() if changed else None
        return record_from_row(row) if row else None

    def get(self, job_id: str) -> JobRecord | None:
        with self._store.transaction(f"read job {job_id}") as conn:
            row = (
                conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id))
                .mappings()
                .first()
            )
        return record_from_row(row) if row else None

    def list(
        self,
        *,
        states: Iterable[JobState] | None = None,
        kinds: Iterable[JobKind] | None = None,
        owner: str | None = None,
        parent: str | None = None,
        top_level: bool = False,
        created_before: datetime | None = None,
        created_from: datetime | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[JobRecord]:
        """Job records matching every filter given; newest first by default.

        ``created_from`` is inclusive, ``created_before`` exclusive; ``strategy`` and
        ``symbol`` match the spec's strategy and one of its symbols.
        """
        where = self._where(
            states, kinds, owner, parent, top_level, created_before, created_from, strategy, symbol
        )
        order = jobs_table.c.created_at.desc() if newest_first else jobs_table.c.created_at
        stmt = sa.select(jobs_table).where(where).order_by(order, jobs_table.c.id)
        if offset:
            stmt = stmt.offset(int(offset))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._store.transaction("list jobs") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [record_from_row(r) for r in rows]

    def page(
        self,
        *,
        states: Iterable[JobState] | None = None,
        kinds: Iterable[JobKind] | None = None,
        owner: str | None = None,
        top_level: bool = True,
        created_before: datetime | None = None,
        created_from: datetime | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[JobRecord]:
        """One page of :meth:`list` (newest first) and how many jobs match in all."""
        if int(limit) < 1 or int(offset) < 0:
            raise DataRangeError(f"limit must be >= 1 and offset >= 0, got {limit}, {offset}")
        states = None if states is None else list(states)
        kinds = None if kinds is None else list(kinds)
        where = self._where(
            states, kinds, owner, None, top_level, created_before, created_from, strategy, symbol
        )
        stmt = (
            sa.select(jobs_table)
            .where(where)
            .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id)
            .offset(int(offset))
            .limit(int(limit))
        )
        count = sa.select(sa.func.count()).select_from(jobs_table).where(where)
        with self._store.transaction("list jobs") as conn:
            rows = conn.execute(stmt).mappings().all()
            total = int(conn.execute(count).scalar_one())
        return Page([record_from_row(r) for r in rows], total, int(offset), int(limit))

    def _where(
        self,
        states: Iterable[JobState] | None,
        kinds: Iterable[JobKind] | None,
        owner: str | None,
        parent: str | None,
        top_level: bool,
        created_before: datetime | None,
        created_from: datetime | None,
        strategy: str | None,
        symbol: str | None,
    ) -> sa.ColumnElement[bool]:
        c = jobs_table.c
        conditions: list[sa.ColumnElement[bool]] = []
        if states is not None:
            conditions.append(c.state.in_([JobState(s).value for s in states]))
        if kinds is not None:
            conditions.append(c.kind.in_([JobKind(k).value for k in kinds]))
        if owner is not None:
            conditions.append(c.owner == owner)
        if parent is not None:
            conditions.append(c.parent == parent)
        if top_level:
            conditions.append(c.parent.is_(None))
        if created_before is not None:
            conditions.append(c.created_at < created_before)
        if created_from is not None:
            conditions.append(c.created_at >= created_from)
        if strategy:
            conditions.append(c.spec["strategy"].as_string() == strategy)
        if symbol:
            conditions.append(json_array_contains(c.spec, symbol, self._store.dialect, "symbols"))
        return sa.and_(sa.true(), *conditions)

    def resolve(self, text: str) -> str:
        """The id of the one job whose id is ``text`` or starts with it (sweep chunks only when
        the prefix reaches into their ``-NNNN`` suffix); one-line errors otherwise."""
        prefix = check_prefix(text, "job", _LISTING)
        c = jobs_table.c
        query = sa.select(c.id).where(c.id.startswith(prefix, autoescape=True))
        if "-" not in prefix:
            query = query.where(c.parent.is_(None))
        with self._store.transaction("find a job") as conn:
            found = list(conn.execute(query.order_by(c.id).limit(CANDIDATE_LIMIT)).scalars())
        return one_match(prefix, found, "job", _LISTING)

    def child_states(self, parent: str) -> dict[JobState, int]:
        """How many children of ``parent`` are in each state."""
        stmt = (
            sa.select(jobs_table.c.state, sa.func.count())
            .where(jobs_table.c.parent == parent)
            .group_by(jobs_table.c.state)
        )
        with self._store.transaction(f"count children of {parent}") as conn:
            return {JobState(s): int(n) for s, n in conn.execute(stmt).all()}

    @staticmethod
    def _result_row(
        job_id: str, kind: JobKind, payload: Mapping[str, Any], table: Any = None
    ) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "kind": kind.value,
            "created_at": _now(),
            "payload": dict(payload),
            "data": None if table is None else codec.encode(table)[0],
        }

    def save_result(
        self, job_id: str, kind: JobKind, payload: Mapping[str, Any], table: Any = None
    ) -> bool:
        """Insert the job's result unless one exists; True when this call wrote it.

        ``table`` (a DataFrame, a list of records or an Arrow table) is stored compactly in
        ``data`` (see ``store/tables.py``); read it back with :meth:`table`.
        """
        row = self._result_row(job_id, kind, payload, table)
        insert = _RESULT_INSERTS.get(self._store.dialect)
        with self._store.transaction(f"save result of {job_id}") as conn:
            if insert is not None:
                return conn.execute(insert, row).first() is not None
            # pragma: no cover - backends without ON CONFLICT: check, then insert
            found = conn.execute(
                sa.select(results_table.c.job_id).where(results_table.c.job_id == job_id)
            ).first()
            if found:
                return False
            conn.execute(results_table.insert(), row)
            return True

    def result(self, job_id: str) -> dict[str, Any] | None:
        """The job's result payload (its table, if any, is read with :meth:`tables`)."""
        with self._store.transaction(f"read result of {job_id}") as conn:
            row = conn.execute(
                sa.select(results_table.c.payload).where(results_table.c.job_id == job_id)
            ).first()
        return dict(row[0]) if row else None

    def results(self, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of these jobs' results (jobs without one are left out)."""
        out: dict[str, dict[str, Any]] = {}
        with self._store.transaction("read job results") as conn:
            for start in range(0, len(job_ids), 500):
                part = job_ids[start : start + 500]
                rows = conn.execute(
                    sa.select(results_table.c.job_id, results_table.c.payload).where(
                        results_table.c.job_id.in_(part)
                    )
                ).all()
                out.update({r[0]: dict(r[1]) for r in rows})
        return out

    def tables(self, job_ids: Sequence[str]) -> dict[str, pa.Table]:
        """The tables of these jobs' results (jobs without one are left out)."""
        out: dict[str, pa.Table] = {}
        with self._store.transaction("read job result tables") as conn:
            for start in range(0, len(job_ids), 500):
                part = job_ids[start : start + 500]
                rows = conn.execute(
                    sa.select(results_table.c.job_id, results_table.c.data).where(
                        results_table.c.job_id.in_(part), results_table.c.data.is_not(None)
                    )
                ).all()
                out.update({r[0]: codec.decode(bytes(r[1])) for r in rows})
        return out
