"""store.runs: compact saves that read back exactly, filters and pages, prefixes, deletes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from traderunner.domain.runs import RunKind, RunOrigin
from traderunner.engine import run_backtest, run_sweep
from traderunner.errors import DataRangeError, StoreError, UserInputError
from traderunner.store import Store
from traderunner.store.schema import job_results, run_tables, runs

from .store_helpers import make_candles


@pytest.fixture(scope="module")
def backtest() -> tuple[Any, dict[str, Any]]:
    candles = {"AAA": make_candles(900, symbol="AAA"), "BBB": make_candles(900, "BBB", seed=3)}
    result = run_backtest("sma_cross", candles, {"fast": 5, "slow": 20}, fees_bps=2.0)
    assert result.n_trades > 3
    return result, candles


def test_a_backtest_reads_back_exactly_and_compactly(store: Store, backtest: Any) -> None:
    result, candles = backtest
    rid = store.runs.save_backtest(
        result, owner="ana", timeframe="M5", name="first", period="all data", prices=candles
    )
    record = store.runs.get(rid)
    assert record is not None
    assert (record.kind, record.origin, record.owner) == (RunKind.BACKTEST, RunOrigin.LOCAL, "ana")
    assert record.symbols == ("AAA", "BBB") and record.timeframe == "M5"
    assert record.params == {"fast": 5, "slow": 20, "mode": "cross"}
    assert record.options["fees_bps"] == 2.0 and record.options["fill"] == "next_open"
    assert set(record.tables) == {"equity", "trade_list", "price:AAA", "price:BBB"}
    # The document is what `backtest --json` printed, through JSON and back.
    want = json.loads(json.dumps(result.to_dict()))
    doc = json.loads(json.dumps(store.runs.document(rid)))
    assert {k: doc[k] for k in want} == want
    assert doc["period"] == "all data" and doc["bars"] == {"AAA": 900, "BBB": 900}
    frames = store.runs.frames(rid)
    pd.testing.assert_series_equal(
        frames["equity"].set_index("ts")["equity"], result.equity, check_names=False
    )
    assert str(frames["equity"]["ts"].dtype) == "datetime64[ns, UTC]"
    np.testing.assert_array_equal(frames["price:BBB"]["close"].to_numpy(), candles["BBB"].close)
    np.testing.assert_array_equal(
        pd.DatetimeIndex(frames["price:AAA"]["ts"]).asi8, candles["AAA"].ts
    )
    # Compact: without the prices (which it did not hold), well under the JSON of old.
    as_json = len(json.dumps(result.to_dict(curve=True)))
    lean = store.runs.get(store.runs.save_backtest(result, owner="ana", timeframe="M5"))
    assert lean is not None and lean.size_bytes < as_json / 3
    with store.engine.connect() as conn:
        blobs = sa.select(sa.func.sum(sa.func.length(run_tables.c.data))).where(
            run_tables.c.run_id == rid
        )
        stored = conn.execute(blobs).scalar()
    assert 0 < stored < record.size_bytes  # size_bytes counts the blobs and the JSON


def test_saving_an_existing_id_again_changes_nothing(store: Store, backtest: Any) -> None:
    result, candles = backtest
    store.runs.save_backtest(result, owner="ana", run_id="job-7", timeframe="M5")
    other = run_backtest("sma_cross", candles, {"fast": 8, "slow": 30})
    again = store.runs.save_backtest(other, owner="bob", run_id="job-7", timeframe="M5")
    assert again == "job-7"
    record = store.runs.get("job-7")
    assert record is not None and record.owner == "ana" and record.params["fast"] == 5
    assert store.runs.list().total == 1


def test_a_sweep_keeps_every_row_and_its_best(store: Store) -> None:
    candles = {"AAA": make_candles(600, symbol="AAA")}
    sweep = run_sweep("sma_cross", candles, {"fast": [3, 5, 8], "slow": [10, 20, 30]})
    rid = store.runs.save_sweep(
        sweep.to_frame(),
        owner="ana",
        strategy="sma_cross",
        symbols=["AAA"],
        timeframe="M5",
        grid={"fast": [3, 5, 8], "slow": [10, 20, 30]},
        options={"fill": "next_open"},
        summary={"skipped": sweep.skipped},
    )
    record = store.runs.get(rid)
    assert record is not None and record.kind is RunKind.SWEEP
    assert record.summary["combinations"] == len(sweep.rows) == 9
    best = max(sweep.rows, key=lambda r: -math.inf if math.isnan(r["sharpe"]) else r["sharpe"])
    assert record.metrics["sharpe"] == pytest.approx(best["sharpe"])
    assert (record.metrics["fast"], record.metrics["slow"]) == (best["fast"], best["slow"])
    rows = store.runs.records(rid, "rows")
    assert rows is not None and len(rows) == 9
    for got, want in zip(rows, sweep.rows, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == pytest.approx(value, nan_ok=True), key


def _saved(store: Store, result: Any, **fields: Any) -> str:
    return store.runs.save_backtest(result, timeframe="M5", **fields)


def test_list_filters_pages_and_counts(store: Store, backtest: Any) -> None:
    result, candles = backtest
    solo = run_backtest("ema_cross", {"BBB": candles["BBB"]}, {})
    ids = {
        "a1": _saved(store, result, owner="ana"),
        "a2": _saved(store, solo, owner="ana", origin=RunOrigin.JOB),
        "b1": _saved(store, result, owner="bob"),
    }
    everything = store.runs.list()
    assert everything.total == 3
    assert [r.id for r in everything.items] == [ids["b1"], ids["a2"], ids["a1"]]  # newest first
    assert {r.id for r in store.runs.list(owner="ana").items} == {ids["a1"], ids["a2"]}
    assert [r.id for r in store.runs.list(strategy="ema_cross").items] == [ids["a2"]]
    assert {r.id for r in store.runs.list(symbol="AAA").items} == {ids["a1"], ids["b1"]}
    assert store.runs.list(symbol="AA").total == 0  # a whole symbol, not a substring
    assert [r.id for r in store.runs.list(origin=RunOrigin.JOB).items] == [ids["a2"]]
    assert store.runs.list(kind=RunKind.SWEEP).total == 0
    page = store.runs.list(limit=2, offset=2)
    assert page.total == 3 and [r.id for r in page.items] == [ids["a1"]] and not page.more
    assert store.runs.list(limit=2).more
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert store.runs.list(created_from=later).total == 0
    assert store.runs.list(created_to=later).total == 3
    with pytest.raises(DataRangeError, match="at least 1"):
        store.runs.list(limit=0)


def test_ids_resolve_by_unique_prefix(store: Store, backtest: Any) -> None:
    result, _ = backtest
    for rid in ("abcd1111", "abcd2222", "abce3333"):
        _saved(store, result, owner="ana", run_id=rid)
    assert store.runs.resolve("abcd1") == "abcd1111"
    assert store.runs.resolve("abce") == "abce3333"
    assert store.runs.resolve("abcd2222") == "abcd2222"
    with pytest.raises(UserInputError, match=r"ambiguous: abcd1111, abcd2222 start with it"):
        store.runs.resolve("abcd")
    with pytest.raises(DataRangeError, match="no result 'ffff'"):
        store.runs.resolve("ffff")
    with pytest.raises(UserInputError, match="too short"):
        store.runs.resolve("ab")
    _saved(store, result, owner="ana", run_id="a%_z9999")
    with pytest.raises(DataRangeError):
        store.runs.resolve("a%_z0")  # % and _ are literal characters, not patterns


def test_delete_and_old_runs(store: Store, backtest: Any) -> None:
    result, candles = backtest
    keep = _saved(store, result, owner="ana", prices=candles)
    gone = _saved(store, result, owner="ana", prices=candles)
    assert store.runs.delete([gone, "nope"]) == 1
    assert store.runs.get(gone) is None and store.runs.frames(gone) == {}
    assert set(store.runs.frames(keep)) == {"equity", "trade_list", "price:AAA", "price:BBB"}
    future = datetime.now(UTC) + timedelta(seconds=5)
    assert [r.id for r in store.runs.older_than(future)] == [keep]
    assert store.runs.older_than(future, owner="bob") == []
    assert store.runs.older_than(datetime.now(UTC) - timedelta(days=1)) == []


def test_a_sweep_run_replaces_its_chunks_rows_in_one_transaction(store: Store) -> None:
    from traderunner.domain.jobs import JobKind, JobRecord, JobState, Queue

    store.jobs.insert(
        [JobRecord(id="c1", kind=JobKind.SWEEP_CHUNK, spec={}, state=JobState.SUCCEEDED,
                   queue=Queue.BATCH)]
    )  # fmt: skip
    rows = [{"fast": 3, "sharpe": 1.0}, {"fast": 5, "sharpe": float("nan")}]
    assert store.jobs.save_result("c1", JobKind.SWEEP_CHUNK, {"offset": 0}, table=rows)
    got = store.jobs.tables(["c1"])["c1"].to_pylist()
    assert got[0] == rows[0] and math.isnan(got[1]["sharpe"])
    store.runs.save_sweep(
        rows,
        owner="",
        strategy="sma_cross",
        symbols=["AAA"],
        timeframe="M5",
        grid={"fast": [3, 5]},
        options={},
        run_id="s1",
        drop_job_results=["c1"],
    )
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_results)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 1


def test_values_json_cannot_hold_are_refused_and_nothing_is_written(
    store: Store, backtest: Any
) -> None:
    result, _ = backtest
    with pytest.raises(StoreError, match=r"run\.summary\.callback is a object"):
        store.runs.save_sweep(
            [{"fast": 1}],
            owner="ana",
            strategy="s",
            symbols=["AAA"],
            timeframe="M5",
            grid={},
            options={},
            summary={"callback": object()},
        )
    with pytest.raises(StoreError, match="1 to 64 characters"):
        _saved(store, result, owner="ana", run_id="x" * 65)
    assert store.runs.list().total == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(run_tables)).scalar() == 0
