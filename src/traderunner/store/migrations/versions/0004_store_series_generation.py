"""Series generation: what keys the series cache, changed only by rewrites, not by appends.

Existing rows start with ``generation = version``: their cached copies (keyed by the version
under the old key pattern) are simply never read again.

Revision ID: 0004_store_series_generation
Revises: 0003_dashboard_users
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_store_series_generation"
down_revision = "0003_dashboard_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(sa.Column("generation", sa.BigInteger, nullable=True))
    op.execute("UPDATE series SET generation = version")
    with op.batch_alter_table("series") as batch:
        batch.alter_column("generation", existing_type=sa.BigInteger, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.drop_column("generation")
