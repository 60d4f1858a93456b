"""The SQL schema of the store (SQLAlchemy Core tables, no ORM).

=================  ============================================================================
table              what it holds
=================  ============================================================================
``store_meta``     key/value facts about the database itself (``created_at``; stores made
                   before migrations also hold ``schema_version = 1``). The schema revision
                   is Alembic's ``alembic_version`` table (``store/migrate.py``).
``candles``        one row per bar: ``(symbol, timeframe, ts)`` is the primary key, ``ts`` is
                   the bar's *open* time in Unix epoch **seconds**, UTC. ``CHECK low <= high``
                   keeps nonsense out whichever client writes.
``series``         one row per ``(symbol, timeframe)``: source label, bar count, first/last
                   ``ts``, a ``version`` bumped by every write that changed a bar (appends
                   included; an identical re-import changes nothing) and a ``generation``
                   that changes only when stored bars were rewritten or bars were inserted
                   before the last one. The generation keys the Redis series cache: within one
                   generation the series only grows at its end, so a cached copy is extended,
                   not thrown away (``store/candles.py``).
``backtest_results``  one row per saved backtest, keyed by an id (the job id when run as a
                   job, so a redelivered job that finds its row does nothing). ``summary`` is
                   the whole ``BacktestResult.to_dict(curve=True)``; the other columns are
                   copies of parts of it for listing and filtering without parsing JSON.
=================  ============================================================================

``jobs``           one row per job (backtest, sweep, sweep chunk, no-op): kind, spec (JSON),
                   state, queue and priority, owner, progress, attempts, worker, error,
                   parent (a sweep chunk's sweep) and timestamps. Written before the job's
                   message is enqueued and on every state change (see ``store/jobs.py``).
``job_results``    what a job produced when it is not a backtest result (sweep tables and
                   chunk rows), keyed by job id, insert-if-absent.

This module is the live schema the repositories use. Every change to it comes with a migration
in ``store/migrations/versions`` that builds the same thing; a test checks that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

candles = sa.Table(
    "candles",
    metadata,
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("timeframe", sa.String(8), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("open", sa.Double, nullable=False),
    sa.Column("high", sa.Double, nullable=False),
    sa.Column("low", sa.Double, nullable=False),
    sa.Column("close", sa.Double, nullable=False),
    sa.Column("volume", sa.Double, nullable=False),
    sa.CheckConstraint("low <= high", name="low_le_high"),
    # SQLite: keep the rows in the primary key's b-tree (no separate rowid table), so a
    # series is one contiguous range scan and the file holds no duplicate index.
    sqlite_with_rowid=False,
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("timeframe", sa.String(8), primary_key=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_ts", sa.BigInteger, nullable=False),
    sa.Column("last_ts", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

backtest_results = sa.Table(
    "backtest_results",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("strategy", sa.String(128), nullable=False, index=True),
    sa.Column("symbols", sa.JSON, nullable=False),
    sa.Column("timeframe", sa.String(8), nullable=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    # Plain JSON, not JSONB, on PostgreSQL: JSONB reorders object keys, and the order of
    # symbols and metrics in a summary is part of what it says.
    sa.Column("summary", sa.JSON, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("queue", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("parent", sa.String(64), sa.ForeignKey("jobs.id"), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

job_results = sa.Table(
    "job_results",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)
