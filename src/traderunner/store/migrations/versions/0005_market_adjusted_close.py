"""EODHD's adjusted_close of daily bars, for split- and dividend-adjusted daily backtests.

Revision ID: 0005_market_adjusted_close
Revises: 0004_store_series_generation
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_market_adjusted_close"
down_revision = "0004_store_series_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adjusted_closes",
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("adjusted_close", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("symbol", "ts", name="pk_adjusted_closes"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("adjusted_closes")
