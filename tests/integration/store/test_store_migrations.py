"""Alembic migrations: a store made before migrations is upgraded with its data intact, the
live schema equals what the migrations build, and a newer store is refused before any write."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
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
    local = _legacy_summary()
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
            schema_v1.backtest_results.insert(),
            [
                {
                    "id": "local1",
                    "created_at": NOW,
                    "strategy": "ema_cross",
                    "symbols": ["MSFT"],
                    "timeframe": "M5",
                    "name": None,
                    "params": local["params"],
                    "options": local["options"],
                    "metrics": local["metrics"],
                    "summary": local,
                }
            ],
        )
        conn.execute(schema_v1.jobs.insert(), _legacy_sweep_jobs())
        conn.execute(
            schema_v1.job_results.insert(),
            [
                {"job_id": "job1", "kind": "sweep", "created_at": NOW, "payload": {"rows": [1]}},
                *(
                    {
                        "job_id": f"sweep1-000{i}",
                        "kind": "sweep_chunk",
                        "created_at": NOW,
                        "payload": {"offset": 2 * i, "rows": SWEEP_ROWS[2 * i : 2 * i + 2]},
                    }
                    for i in range(2)
                ),
                {
                    "job_id": "sweep1",
                    "kind": "sweep",
                    "created_at": NOW,
                    "payload": {"rows": SWEEP_ROWS, "combinations": 4, "chunks": 2, "skipped": 1},
                },
            ],
        )
    engine.dispose()
    return {"bars": bars, "summary": summary, "local": local}


SWEEP_ROWS = [
    {"fast": f, "slow": 20, "sharpe": sharpe, "total_return": ret}
    for f, sharpe, ret in ((3, 0.5, 0.05), (5, None, 0.0), (8, 1.5, 0.15), (13, -0.25, -0.02))
]


def _legacy_summary() -> dict[str, object]:
    """What 0.1's ``to_dict(curve=True)`` saved for a local run: the curve and trades as JSON."""
    return {
        "strategy": "ema_cross",
        "params": {"fast": 12, "slow": 26},
        "options": {"fill": "next_open", "direction": "long", "cash": 100000.0},
        "symbols": ["MSFT"],
        "sources": {"MSFT": "test"},
        "trades": 2,
        "metrics": {"total_return": 0.01, "sharpe": 0.8},
        "per_symbol": {"MSFT": {"metrics": {"sharpe": 0.8}, "trades": 2}},
        "trade_list": [
            {"symbol": "MSFT", "entry_time": "2024-01-02T14:35:00Z", "pnl": 12.5, "bars": 3},
            {"symbol": "MSFT", "entry_time": "2024-01-02T15:00:00Z", "pnl": -3.0, "bars": 1},
        ],
        "equity": [
            ["2024-01-02T14:30:00Z", 100000.0],
            ["2024-01-02T14:35:00Z", 100012.5],
            ["2024-01-02T14:40:00Z", None],
        ],
        "name": "",
        "timeframe": "M5",
    }


def _legacy_sweep_jobs() -> list[dict[str, object]]:
    base = {
        "state": "succeeded",
        "queue": "batch",
        "priority": 7,
        "owner": "bob",
        "progress": 1.0,
        "message": "",
        "attempts": 1,
        "worker": "w1",
        "error": "",
        "created_at": NOW,
        "started_at": NOW,
        "finished_at": NOW,
        "updated_at": NOW,
    }
    spec = {
        "kind": "sweep",
        "strategy": "sma_cross",
        "symbols": ["MSFT"],
        "grid": {"fast": [3, 5, 8, 13], "slow": [20]},
        "timeframe": "M5",
        "options": {"fees_bps": 1.0},
        "name": "grid one",
    }
    chunks = [
        {**base, "id": f"sweep1-000{i}", "kind": "sweep_chunk", "parent": "sweep1", "spec": {}}
        for i in range(2)
    ]
    return [{**base, "id": "sweep1", "kind": "sweep", "parent": None, "spec": spec}, *chunks]


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
        _assert_runs_carried_over(store, made)
    # A second start finds the revision and changes nothing.
    with Store.connect(store_url) as again, again.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM candles").scalar() == 300


def _assert_runs_carried_over(store: Store, made: dict[str, object]) -> None:
    """0.1's results are runs now: owners from their jobs, curves and lists as tables."""
    listed = {r.id: r for r in store.runs.list().items}
    assert set(listed) == {"job1", "local1", "sweep1"}
    job1, local1, sweep1 = listed["job1"], listed["local1"], listed["sweep1"]
    assert (job1.origin.value, job1.owner, job1.kind.value) == ("job", "ana", "backtest")
    assert job1.metrics == {"sharpe": 1.25} and job1.params == {"fast": 10, "slow": 50}
    # A local result recorded no owner: it stays unknown rather than guessed.
    assert (local1.origin.value, local1.owner, local1.name) == ("local", "", "")
    legacy = made["local"]
    assert isinstance(legacy, dict)
    doc = store.runs.document("local1")
    assert doc is not None
    for key in ("strategy", "params", "options", "symbols", "metrics", "trade_list", "per_symbol"):
        assert doc[key] == legacy[key], key
    assert "equity" not in doc and doc["first_bar"] == "2024-01-02T14:30:00+00:00"
    equity = store.runs.frames("local1", ["equity"])["equity"]
    assert [t.isoformat() for t in equity["ts"]] == [
        "2024-01-02T14:30:00+00:00",
        "2024-01-02T14:35:00+00:00",
        "2024-01-02T14:40:00+00:00",
    ]
    assert equity["equity"].tolist()[:2] == [100000.0, 100012.5]
    assert equity["equity"].isna().tolist() == [False, False, True]
    # A finished job sweep: its table is a run; its chunks' rows are a compact table.
    assert (sweep1.kind.value, sweep1.owner, sweep1.name) == ("sweep", "bob", "grid one")
    assert sweep1.params == {"fast": [3, 5, 8, 13], "slow": [20]}
    assert sweep1.metrics == SWEEP_ROWS[2] and sweep1.summary["skipped"] == 1
    assert store.runs.records("sweep1", "rows") == SWEEP_ROWS
    assert store.jobs.result("sweep1") is None
    chunks = store.jobs.tables(["sweep1-0000", "sweep1-0001"])
    assert chunks["sweep1-0001"].to_pylist() == SWEEP_ROWS[2:]
    assert store.jobs.result("sweep1-0001") == {"offset": 2}
    # What was not a sweep's table is left exactly as it was.
    assert store.jobs.result("job1") == {"rows": [1]}


def test_the_upgrade_can_be_undone_with_every_result_back(store_url: str) -> None:
    made = _legacy_store(store_url)
    Store.connect(store_url).close()
    engine = sa.create_engine(normalize_url(store_url))
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), migrate.BASELINE)
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.BASELINE
        assert compare_metadata(MigrationContext.configure(conn), schema_v1.metadata) == []
        got = schema_v1.backtest_results
        rows = {r.id: r for r in conn.execute(sa.select(got))}
        payloads = {r.job_id: r.payload for r in conn.execute(sa.select(schema_v1.job_results))}
    engine.dispose()
    legacy = made["local"]
    assert isinstance(legacy, dict)
    back = rows["local1"].summary
    assert {k: back[k] for k in legacy if k != "equity"} == {
        k: v for k, v in legacy.items() if k != "equity"
    }
    assert back["equity"] == [[t.replace("+00:00", "Z"), v] for t, v in legacy["equity"]]
    assert rows["job1"].metrics == {"sharpe": 1.25}
    assert payloads["sweep1"]["rows"] == SWEEP_ROWS
    assert payloads["sweep1-0000"] == {"offset": 0, "rows": SWEEP_ROWS[:2]}
    # ... and upgrading again gives the same runs.
    with Store.connect(store_url) as store:
        _assert_runs_carried_over(store, made)


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
