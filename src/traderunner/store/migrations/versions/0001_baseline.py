"""Baseline: the tables traderunner 0.1 created with ``create_all`` (schema_version 1).

A store made before migrations existed has exactly these tables; ``migrate.upgrade`` stamps it
with this revision instead of running it, then applies what follows.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_store_meta"),
    )
    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("volume", sa.Double, nullable=False),
        sa.CheckConstraint("low <= high", name="ck_candles_low_le_high"),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name="pk_candles"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "series",
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_ts", sa.BigInteger, nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timeframe", name="pk_series"),
    )
    op.create_table(
        "backtest_results",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("symbols", sa.JSON, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=True),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backtest_results"),
    )
    op.create_index("ix_backtest_results_created_at", "backtest_results", ["created_at"])
    op.create_index("ix_backtest_results_strategy", "backtest_results", ["strategy"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(256), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["parent"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    for column in ("kind", "state", "owner", "parent", "created_at"):
        op.create_index(f"ix_jobs_{column}", "jobs", [column])
    op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id", name="pk_job_results"),
    )


def downgrade() -> None:
    for table in ("job_results", "jobs", "backtest_results", "series", "candles", "store_meta"):
        op.drop_table(table)
