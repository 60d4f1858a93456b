"""The store's schema as traderunner 0.1 created it, before migrations (``create_all``).

A frozen snapshot, kept only to build a pre-Alembic store in the upgrade test: the code of
that release wrote these tables with ``metadata.create_all`` and ``store_meta.schema_version
= 1``. Never edit it to follow the live schema.
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
