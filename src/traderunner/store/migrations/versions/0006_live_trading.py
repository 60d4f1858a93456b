"""The live path: live strategies, their last targets and the stream's cursors; the paper
trader's orders, fills, positions, accounts and risk rejections.

Revision ID: 0006_live_trading
Revises: 0005_market_adjusted_close
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_live_trading"
down_revision = "0005_market_adjusted_close"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "live_strategies",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("symbols", sa.JSON, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_live_strategies"),
    )
    op.create_table(
        "live_targets",
        sa.Column("live", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.Column("hold", sa.Integer, nullable=True),
        sa.Column("bar_ns", sa.BigInteger, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("live", "symbol", name="pk_live_targets"),
    )
    op.create_table(
        "stream_cursors",
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("bar_ns", sa.BigInteger, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("symbol", "timeframe", name="pk_stream_cursors"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("signal_id", sa.String(128), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("live", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.Column("previous", sa.Integer, nullable=False),
        sa.Column("bar_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("signal_id", name="uq_orders_signal_id"),
    )
    op.create_index("ix_orders_account", "orders", ["account"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("order_id", sa.Integer, nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("live", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("bar_ns", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("units", sa.Double, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("fee", sa.Double, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.UniqueConstraint("live", "symbol", "bar_ns", "seq", name="uq_fills_bar"),
    )
    op.create_index("ix_fills_account", "fills", ["account"])
    op.create_table(
        "positions",
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("live", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("units", sa.Double, nullable=False),
        sa.Column("entry_price", sa.Double, nullable=False),
        sa.Column("cash", sa.Double, nullable=False),
        sa.Column("start_cash", sa.Double, nullable=False),
        sa.Column("equity", sa.Double, nullable=False),
        sa.Column("last_price", sa.Double, nullable=False),
        sa.Column("realized_pnl", sa.Double, nullable=False),
        sa.Column("bar_ns", sa.BigInteger, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("account", "live", "symbol", name="pk_positions"),
    )
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("start_cash", sa.Double, nullable=False),
        sa.Column("cash", sa.Double, nullable=False),
        sa.Column("equity", sa.Double, nullable=False),
        sa.Column("realized_pnl", sa.Double, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("day_start_equity", sa.Double, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_accounts"),
    )
    op.create_table(
        "risk_rejections",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("signal_id", sa.String(128), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("live", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("check", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name="pk_risk_rejections"),
    )
    op.create_index("ix_risk_rejections_signal_id", "risk_rejections", ["signal_id"])
    op.create_index("ix_risk_rejections_at", "risk_rejections", ["at"])


def downgrade() -> None:
    for table in (
        "risk_rejections",
        "accounts",
        "positions",
        "fills",
        "orders",
        "stream_cursors",
        "live_targets",
        "live_strategies",
    ):
        op.drop_table(table)
