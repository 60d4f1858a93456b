"""Alembic migrations: a store made before migrations is upgraded with its data intact, the
live schema equals what the migrations build, and a newer store is refused before any write."""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from traderunner.domain import Timeframe
from traderunner.errors import StoreError
from traderunner.store import Store, migrate, normalize_url
from traderunner.store.schema import metadata

from . import schema_v1
from .store_helpers import NS, assert_same_bars, make_candles

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _legacy_store(url: str) -> dict[str, object]:
    """A store exactly as traderunner 0.1 left it: ``create_all`` of its tables, its
    ``schema_version`` row, and one of each kind of row, written with plain SQL."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed)
    bars = make_candles(300, symbol="MSFT")
    summary = {"strategy": "sma_cross", "metrics": {"sharpe": 1.25}, "symbols": ["MSFT"]}
    with engine.begin() as conn:
        schema_v1.metadata.create_all(conn)
        conn.execute(schema_v1.store_meta.insert(), [{"key": "schema_version", "value": "1"}])
        conn.execute(
            schema_v1.candles.insert(),
            [
                {
                    "symbol": "MSFT",
                    "timeframe": "M5",
                    "ts": int(bars.ts[i] // NS),
                    "open": float(bars.open[i]),
                    "high": float(bars.high[i]),
                    "low": float(bars.low[i]),
                    "close": float(bars.close[i]),
                    "volume": float(bars.volume[i]),
                }
                for i in range(len(bars))
            ],
        )
        conn.execute(
            schema_v1.series.insert(),
            [
                {
                    "symbol": "MSFT",
                    "timeframe": "M5",
                    "source": "test",
                    "count": len(bars),
                    "first_ts": int(bars.ts[0] // NS),
                    "last_ts": int(bars.ts[-1] // NS),
                    "version": 7,
                    "updated_at": NOW,
                }
            ],
        )
        conn.execute(
            schema_v1.jobs.insert(),
            [
                {
                    "id": "job1",
                    "kind": "backtest",
                    "state": "succeeded",
                    "queue": "interactive",
                    "priority": 2,
                    "owner": "ana",
                    "spec": {"strategy": "sma_cross", "symbols": ["MSFT"]},
                    "progress": 1.0,
                    "message": "done",
                    "attempts": 1,
                    "worker": "w1",
                    "error": "",
                    "parent": None,
                    "created_at": NOW,
                    "started_at": NOW,
                    "finished_at": NOW,
                    "updated_at": NOW,
                }
            ],
        )
        conn.execute(
            schema_v1.backtest_results.insert(),
            [
                {
                    "id": "job1",
                    "created_at": NOW,
                    "strategy": "sma_cross",
                    "symbols": ["MSFT"],
                    "timeframe": "M5",
                    "name": None,
                    "params": {"fast": 10, "slow": 50},
                    "options": {"fill": "next_open"},
                    "metrics": {"sharpe": 1.25},
                    "summary": summary,
                }
            ],
        )
        conn.execute(
            schema_v1.job_results.insert(),
            [{"job_id": "job1", "kind": "sweep", "created_at": NOW, "payload": {"rows": [1]}}],
        )
    engine.dispose()
    return {"bars": bars, "summary": summary}


def test_a_store_made_before_migrations_is_upgraded_and_keeps_every_row(store_url: str) -> None:
    made = _legacy_store(store_url)
    with Store.connect(store_url) as store:
        with store.engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
        got = store.candles.load("MSFT", Timeframe.M5)
        assert_same_bars(got, made["bars"])  # type: ignore[arg-type]
        info = store.candles.series("MSFT", Timeframe.M5)
        assert info is not None and info.count == 300 and info.version == 7
        assert info.generation == 7  # 0002 starts every series at its version
        job = store.jobs.get("job1")
        assert job is not None and job.owner == "ana" and job.state.value == "succeeded"
        assert job.spec == {"strategy": "sma_cross", "symbols": ["MSFT"]}
        saved = store.results.get("job1")
        assert saved is not None
        assert json.loads(json.dumps(saved))["metrics"] == {"sharpe": 1.25}
    # A second start finds the revision and changes nothing.
    with Store.connect(store_url) as again, again.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM candles").scalar() == 300


def test_the_live_schema_is_what_the_migrations_build(store_url: str) -> None:
    with Store.connect(store_url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_legacy_store_upgraded_has_the_same_schema_as_a_new_one(store_url: str) -> None:
    _legacy_store(store_url)
    with Store.connect(store_url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_store_from_a_newer_traderunner_is_refused_untouched(store_url: str) -> None:
    with Store.connect(store_url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(StoreError) as err:
        Store.connect(store_url)
    message = str(err.value)
    assert "9999_from_the_future" in message and "upgrade traderunner" in message
    assert "\n" not in message
    engine = sa.create_engine(normalize_url(store_url))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == (
            "9999_from_the_future"
        )
    engine.dispose()


def _connect_after(url: str, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    Store.connect(url).close()


def test_processes_starting_together_on_a_new_store_all_connect(store_url: str) -> None:
    # Separate processes, as `traderunner up` starts them, all released at the same instant.
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    procs = [ctx.Process(target=_connect_after, args=(store_url, start_at)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store.connect(store_url) as store, store.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
