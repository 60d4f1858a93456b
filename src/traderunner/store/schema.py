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
``runs``           one row per saved run (backtest or sweep, local or a job's; a job's run has
                   the job's id, so a redelivered job that finds its row does nothing): kind,
                   origin, owner, strategy, symbols, timeframe, name, and as JSON the params (a
                   sweep's grid), every engine option, the metrics (a sweep's best row) and the
                   rest of the summary; ``size_bytes`` is what the run takes.
``run_tables``     a run's large parts, one Parquet blob per ``(run_id, name)``: ``equity``,
                   ``price:SYMBOL``, ``trade_list`` (and any other list of records a result
                   reports), a sweep's ``rows`` (see ``store/tables.py``).
``jobs``           one row per job (backtest, sweep, sweep chunk, no-op): kind, spec (JSON),
                   state, queue and priority, owner, progress, attempts, worker, error,
                   parent (a sweep chunk's sweep) and timestamps. Written before the job's
                   message is enqueued and on every state change (see ``store/jobs.py``).
``job_results``    what a job produced that is not a run: a sweep chunk's rows (a Parquet blob
                   in ``data``, dropped when its sweep's run is written), a no-op's echo;
                   keyed by job id, insert-if-absent.
``users``          one row per dashboard user: name (lower case, the key), an argon2 password
                   hash (never the password), admin flag, created / password-changed / last
                   login times (``store/users.py``).
``logins``         one row per login attempt, successful or not: when, the name given, the
                   client address, the outcome (``ok``, ``bad_password``, ``unknown_user``,
                   ``limited``) and the browser's user agent. Kept when a user is removed.
``live_strategies``  one row per live strategy (``traderunner live add``): name (the key),
                   strategy, params, symbols, timeframe, engine options (fill, direction,
                   size, cash, costs, stops) as JSON, the paper account it trades in, paused
                   (``store/live.py``).
``live_targets``   the last target position the stream service published per (live strategy,
                   symbol), the bar it was computed on, and (``hold``) the signal the session
                   started on while a crossing rule waits for its first change: durable, so
                   a restarted stream neither repeats nor skips a signal.
``stream_cursors`` per (symbol, timeframe) the newest bar the stream service has fully handled
                   (stored, cached, published, strategies run): a restarted replay resumes
                   after it.
``orders``         one row per signal the trader handled (``store/trading.py``): the signal id
                   is UNIQUE (the idempotency key: a redelivered signal never trades twice),
                   account, live strategy, symbol, target, the bar, status (``open``,
                   ``filled``, ``rejected``, ``unchanged``) and when it was recorded.
``fills``          one row per execution of the paper broker: order (none for a stop), side,
                   units, price, fee, reason (signal, stop_loss, ...), the bar it filled on;
                   ``(live, symbol, bar_ns, seq)`` is unique.
``positions``      one row per (account, live strategy, symbol) sleeve: units, entry price,
                   the sleeve's cash, equity and last price, realised PnL, the newest bar
                   stepped and the engine step's state as JSON.
``accounts``       one row per paper account: starting cash, cash, equity, realised PnL, the
                   UTC day and its opening equity (for the daily loss limit).
``risk_rejections`` one row per order the trader's risk checks refused: signal id, account,
                   live strategy, symbol, the check and the reason.
=================  ============================================================================

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

# EODHD's adjusted_close of a daily bar (split- and dividend-adjusted; its OHLC are raw), so a
# daily backtest can use adjusted prices (marketdata/adjust.py). Daily bars only: one row per
# (symbol, ts) of a D1 candle; kept apart from candles so their hot write path is unchanged.
adjusted_closes = sa.Table(
    "adjusted_closes",
    metadata,
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("adjusted_close", sa.Double, nullable=False),
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

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("strategy", sa.String(128), nullable=False, index=True),
    sa.Column("symbols", sa.JSON, nullable=False),
    sa.Column("timeframe", sa.String(8), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    # Plain JSON, not JSONB, on PostgreSQL: JSONB reorders object keys, and the order of
    # symbols and metrics in a summary is part of what it says.
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
)

run_tables = sa.Table(
    "run_tables",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
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
    sa.Column("data", sa.LargeBinary, nullable=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
)

logins = sa.Table(
    "logins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    # The name as given (it may be no user's): not a foreign key, so the record survives.
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("user_agent", sa.String(256), nullable=False),
)

# -- the live path (signals/ and trader/): see docs/live.md --------------------------------------

live_strategies = sa.Table(
    "live_strategies",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("strategy", sa.String(128), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("symbols", sa.JSON, nullable=False),
    sa.Column("timeframe", sa.String(8), nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

live_targets = sa.Table(
    "live_targets",
    metadata,
    sa.Column("live", sa.String(64), primary_key=True),
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("target", sa.Integer, nullable=False),
    # The signal on the bar the sleeve's session started, while a strategy that waits for a
    # change (crossings) has not seen one yet; NULL once it has (or for other strategies).
    sa.Column("hold", sa.Integer, nullable=True),
    sa.Column("bar_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

stream_cursors = sa.Table(
    "stream_cursors",
    metadata,
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("timeframe", sa.String(8), primary_key=True),
    sa.Column("bar_ns", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signal_id", sa.String(128), nullable=False),
    sa.Column("account", sa.String(64), nullable=False, index=True),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The idempotency key: a redelivered signal finds its order and trades nothing.
    sa.UniqueConstraint("signal_id", name="uq_orders_signal_id"),
)

fills = sa.Table(
    "fills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=True),
    sa.Column("account", sa.String(64), nullable=False, index=True),
    sa.Column("live", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("bar_ns", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("units", sa.Double, nullable=False),
    sa.Column("price", sa.Double, nullable=False),
    sa.Column("fee", sa.Double, nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("live", "symbol", "bar_ns", "seq", name="uq_fills_bar"),
)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("live", sa.String(64), primary_key=True),
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("units", sa.Double, nullable=False),
    sa.Column("entry_price", sa.Double, nullable=False),
    sa.Column("cash", sa.Double, nullable=False),
    sa.Column("start_cash", sa.Double, nullable=False),
    sa.Column("equity", sa.Double, nullable=False),
    sa.Column("last_price", sa.Double, nullable=False),
    sa.Column("realized_pnl", sa.Double, nullable=False),
    sa.Column("bar_ns", sa.BigInteger, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("start_cash", sa.Double, nullable=False),
    sa.Column("cash", sa.Double, nullable=False),
    sa.Column("equity", sa.Double, nullable=False),
    sa.Column("realized_pnl", sa.Double, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("day_start_equity", sa.Double, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

risk_rejections = sa.Table(
    "risk_rejections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("signal_id", sa.String(128), nullable=False, index=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("live", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("check", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
)
