"""What a saved result costs in the store, before (0.1's JSON) and after (runs + Parquet tables).

``python benchmarks/results_size.py [--combos N] [--results N]`` builds, in a temporary folder,
SQLite stores laid out both ways and writes ``benchmarks/results/results_size.{json,md}``:

* **backtest**: the same real ``run_backtest`` result (one symbol, the demo's 120 days of M5
  bars; and the three symbols ``make up`` runs) saved N times. *Before* is a store at the 0.1
  schema (Alembic's baseline revision) holding ``to_dict(curve=True)`` in
  ``backtest_results.summary``, as 0.1 saved it; *after* is a store at the newest revision
  holding ``store.runs.save_backtest`` (which also keeps each symbol's close, which 0.1 did not).
* **sweep as a job**: a real ``run_sweep`` of N combinations, written the way each version
  writes a finished sweep job: the job rows (parent and chunks, the chunks' specs with their
  combinations), every chunk's rows, then the assembled table. 0.1 kept both as JSON; now the
  chunks' rows are Parquet and are dropped when the sweep's run is written.

Figures per layout: the database file after a checkpoint (``PRAGMA wal_checkpoint(TRUNCATE)``),
the write-ahead log as the writes left it (its high-water mark), the bytes per result, and the
wall time to write and to read one back. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024


def _old_store(path: Path) -> sa.Engine:
    """A store at 0.1's schema: the baseline migration, exactly the tables 0.1 created."""
    from alembic import command

    from traderunner.store import migrate

    engine = sa.create_engine(f"sqlite:///{path}")
    sa.event.listen(engine, "connect", _wal)
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), migrate.BASELINE)
    return engine


def _wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _sizes(db: Path, engine: sa.Engine) -> dict[str, int]:
    wal = db.with_name(db.name + "-wal")
    peak = wal.stat().st_size if wal.exists() else 0
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"db_bytes": db.stat().st_size, "wal_peak_bytes": peak}


def _candles(symbols: list[str], days: int) -> dict[str, Any]:
    from traderunner.domain.timeframe import Timeframe
    from traderunner.marketdata import synthetic_candles

    end = datetime(2025, 6, 30, tzinfo=UTC)
    start = datetime.fromtimestamp(end.timestamp() - days * 86400, tz=UTC)
    return {s: synthetic_candles(s, Timeframe.M5, start, end) for s in symbols}


def backtest_sizes(folder: Path, symbols: list[str], n_results: int) -> dict[str, Any]:
    from traderunner.engine import run_backtest
    from traderunner.store import Store

    candles = _candles(symbols, 120)
    result = run_backtest("sma_cross", candles, {"fast": 10, "slow": 50}, fees_bps=1.0)
    summary = result.to_dict(curve=True)
    summary["timeframe"] = "M5"

    old_db = folder / f"before-{len(symbols)}.db"
    engine = _old_store(old_db)
    table = sa.Table("backtest_results", sa.MetaData(), autoload_with=engine)
    base = _sizes(old_db, engine)["db_bytes"]
    t0 = time.perf_counter()
    for i in range(n_results):
        with engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    id=f"r{i:04d}",
                    created_at=datetime.now(UTC),
                    strategy=summary["strategy"],
                    symbols=summary["symbols"],
                    timeframe="M5",
                    name=None,
                    params=summary["params"],
                    options=summary["options"],
                    metrics=summary["metrics"],
                    summary=summary,
                )
            )
    write_old = (time.perf_counter() - t0) / n_results
    old = _sizes(old_db, engine)
    engine.dispose()

    t_read = []
    with engine.connect() as conn:
        for _ in range(5):
            t0 = time.perf_counter()
            doc = conn.execute(sa.select(table.c.summary).where(table.c.id == "r0000")).scalar()
            t_read.append(time.perf_counter() - t0)
    assert doc is not None
    read_old = statistics.median(t_read)
    old = _sizes(old_db, engine)
    engine.dispose()
    before = (old["db_bytes"] - base) / n_results
    out: dict[str, Any] = {
        "symbols": symbols,
        "bars": {s: len(c) for s, c in candles.items()},
        "trades": result.n_trades,
        "results_saved": n_results,
        "summary_json_bytes": len(json.dumps(summary)),
        "before": {**old, "bytes_per_result": before, "write_s": write_old, "read_s": read_old},
    }
    for key, prices in (("after", candles), ("after_without_prices", None)):
        new_db = folder / f"{key}-{len(symbols)}.db"
        store = Store.connect(f"sqlite:///{new_db}")
        base_new = _sizes(new_db, store.engine)["db_bytes"]
        t0 = time.perf_counter()
        ids = [
            store.runs.save_backtest(
                result, owner="bench", timeframe="M5", period="all data", prices=prices
            )
            for _ in range(n_results)
        ]
        write_new = (time.perf_counter() - t0) / n_results
        store.runs.frames(ids[0])  # warm: pyarrow's first import is not a read
        t_read = []
        for _ in range(5):
            t0 = time.perf_counter()
            store.runs.document(ids[0])
            store.runs.frames(ids[0])
            t_read.append(time.perf_counter() - t0)
        new = _sizes(new_db, store.engine)
        record = store.runs.get(ids[0])
        store.close()
        assert record is not None
        after = (new["db_bytes"] - base_new) / n_results
        out[key] = {
            **new,
            "bytes_per_result": after,
            "size_bytes_reported": record.size_bytes,
            "tables": list(record.tables),
            "write_s": write_new,
            "read_s": statistics.median(t_read),
            "ratio": before / after,
        }
    return out


def _sweep_rows(n_combos: int) -> tuple[Any, dict[str, list[int]], float]:
    from traderunner.engine import run_sweep

    slow_n = 500
    fast_n = max(1, math.ceil(n_combos / slow_n))
    grid = {"fast": list(range(2, 2 + fast_n)), "slow": list(range(1000, 1000 + slow_n))}
    candles = _candles(["AAPL"], 30)
    sweep = run_sweep("sma_cross", candles, grid)
    return sweep, grid, float(len(candles["AAPL"]))


def sweep_sizes(folder: Path, n_combos: int) -> dict[str, Any]:
    from traderunner.domain.jobs import JobKind, JobRecord, JobState, Queue
    from traderunner.domain.jsonsafe import json_safe
    from traderunner.jobs.spec import auto_chunk_size
    from traderunner.store import Store

    sweep, grid, bars = _sweep_rows(n_combos)
    combos = [{"fast": r["fast"], "slow": r["slow"]} for r in sweep.rows]
    size = auto_chunk_size(len(combos), int(bars))
    chunks = [(i, combos[s : s + size]) for i, s in enumerate(range(0, len(combos), size))]
    rows = sweep.rows
    json_rows = json_safe(rows)
    now = datetime.now(UTC)
    spec = {
        "kind": "sweep",
        "strategy": "sma_cross",
        "symbols": ["AAPL"],
        "grid": grid,
        "timeframe": "M5",
        "options": {},
        "name": "",
    }

    def job_rows() -> list[dict[str, Any]]:
        base = {
            "state": "succeeded",
            "queue": "batch",
            "priority": 5,
            "owner": "bench",
            "progress": 1.0,
            "message": "",
            "attempts": 1,
            "worker": "w",
            "error": "",
            "created_at": now,
            "started_at": now,
            "finished_at": now,
            "updated_at": now,
        }
        out = [
            {
                **base,
                "id": "s",
                "kind": "sweep",
                "parent": None,
                "spec": {**spec, "combinations": len(combos), "chunks": len(chunks)},
            }
        ]
        for i, part in chunks:
            child = {**spec, "kind": "sweep_chunk", "combos": part, "offset": i * size, "index": i}
            del child["grid"]
            out.append(
                {**base, "id": f"s-{i:04d}", "kind": "sweep_chunk", "parent": "s", "spec": child}
            )
        return out

    # Before: 0.1's layout, every chunk's rows and the assembled table as JSON.
    old_db = folder / "sweep-before.db"
    engine = _old_store(old_db)
    meta = sa.MetaData()
    jobs = sa.Table("jobs", meta, autoload_with=engine)
    results = sa.Table("job_results", meta, autoload_with=engine)
    base = _sizes(old_db, engine)["db_bytes"]
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(jobs.insert(), job_rows())
    for i, _ in chunks:
        with engine.begin() as conn:
            part = json_rows[i * size : (i + 1) * size]
            conn.execute(
                results.insert().values(
                    job_id=f"s-{i:04d}",
                    kind="sweep_chunk",
                    created_at=now,
                    payload={"offset": i * size, "rows": part, "elapsed_s": 0.1},
                )
            )
    with engine.begin() as conn:
        conn.execute(
            results.insert().values(
                job_id="s",
                kind="sweep",
                created_at=now,
                payload={
                    "rows": json_rows,
                    "combinations": len(rows),
                    "chunks": len(chunks),
                    "skipped": 0,
                    "compute_s": 1.0,
                },
            )
        )
    write_old = time.perf_counter() - t0
    old = _sizes(old_db, engine)
    engine.dispose()

    # After: chunk rows as Parquet, then the sweep's run, which drops them.
    new_db = folder / "sweep-after.db"
    store = Store.connect(f"sqlite:///{new_db}")
    base_new = _sizes(new_db, store.engine)["db_bytes"]
    records = [
        JobRecord(
            id=r["id"],
            kind=JobKind(r["kind"]),
            spec=r["spec"],
            state=JobState.SUCCEEDED,
            queue=Queue.BATCH,
            owner="bench",
            parent=r["parent"],
            created_at=now,
        )
        for r in job_rows()
    ]
    t0 = time.perf_counter()
    store.jobs.insert(records)
    import pandas as pd

    frame = pd.DataFrame(rows)
    for i, _ in chunks:
        store.jobs.save_result(
            f"s-{i:04d}",
            JobKind.SWEEP_CHUNK,
            {"offset": i * size, "count": size},
            table=frame.iloc[i * size : (i + 1) * size],
        )
    mid = _sizes(new_db, store.engine)
    store.runs.save_sweep(
        frame,
        owner="bench",
        strategy="sma_cross",
        symbols=["AAPL"],
        timeframe="M5",
        grid=grid,
        options={},
        run_id="s",
        summary={"chunks": len(chunks), "skipped": 0},
        drop_job_results=[f"s-{i:04d}" for i, _ in chunks],
    )
    write_new = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = store.runs.records("s", "rows")
    read_new = time.perf_counter() - t0
    new = _sizes(new_db, store.engine)
    record = store.runs.get("s")
    store.close()
    assert back is not None and len(back) == len(rows) and record is not None
    return {
        "combinations": len(rows),
        "chunks": len(chunks),
        "bars": int(bars),
        "columns": len(rows[0]),
        "before": {
            **old,
            "db_mb": old["db_bytes"] / MB,
            "wal_peak_mb": old["wal_peak_bytes"] / MB,
            "bytes_per_combination": (old["db_bytes"] - base) / len(rows),
            "write_s": write_old,
        },
        "after": {
            **new,
            "db_mb": new["db_bytes"] / MB,
            "wal_peak_mb": new["wal_peak_bytes"] / MB,
            "db_with_chunk_rows_mb": mid["db_bytes"] / MB,
            "bytes_per_combination": (new["db_bytes"] - base_new) / len(rows),
            "run_size_bytes": record.size_bytes,
            "write_s": write_new,
            "read_rows_s": read_new,
        },
        "ratio": (old["db_bytes"] - base) / max(new["db_bytes"] - base_new, 1),
    }


def _md(report: dict[str, Any]) -> str:
    lines = [
        f"# Stored result sizes ({report['when']}, {report['machine']})",
        "",
        "Before: 0.1's layout (the whole `to_dict(curve=True)` as JSON; a sweep job's chunk rows",
        "and its table as JSON). After: `runs` + Parquet `run_tables` (`store/tables.py`).",
        "SQLite, WAL mode, file sizes after a checkpoint; WAL = its size when the writes ended.",
        "",
        "| backtest | bars | trades | before, per result | after | after, without prices "
        "| write before / after | read before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for bt in report["backtests"]:
        b, a, lean = bt["before"], bt["after"], bt["after_without_prices"]
        lines.append(
            f"| {', '.join(bt['symbols'])} | {sum(bt['bars'].values()):,} | {bt['trades']} "
            f"| {b['bytes_per_result'] / 1024:,.0f} KiB "
            f"| {a['bytes_per_result'] / 1024:,.0f} KiB ({a['ratio']:.1f}x smaller) "
            f"| {lean['bytes_per_result'] / 1024:,.0f} KiB ({lean['ratio']:.1f}x smaller) "
            f"| {b['write_s'] * 1e3:.1f} / {a['write_s'] * 1e3:.1f} ms "
            f"| {b['read_s'] * 1e3:.1f} / {a['read_s'] * 1e3:.1f} ms |"
        )
    lines += [
        "",
        "*after* keeps each symbol's close (float64, for the report's price chart), which 0.1 "
        "did not; *without prices* is the same result saved without them (what 0.1 kept). "
        "Before = `to_dict(curve=True)` as JSON; read = the summary (before), the document and "
        "every table decoded (after); median of 5.",
    ]
    sw = report["sweep"]
    b, a = sw["before"], sw["after"]
    lines += [
        "",
        f"| sweep job, {sw['combinations']:,} combinations in {sw['chunks']} chunks "
        f"({sw['columns']} columns) | before | after | smaller |",
        "|---|---|---|---|",
        f"| database file | {b['db_mb']:,.1f} MB | {a['db_mb']:,.1f} MB | {sw['ratio']:.1f}x |",
        f"| write-ahead log, peak | {b['wal_peak_mb']:,.1f} MB | {a['wal_peak_mb']:,.1f} MB | |",
        f"| bytes per combination | {b['bytes_per_combination']:,.0f} "
        f"| {a['bytes_per_combination']:,.0f} | |",
        f"| while the chunks' rows are held | | {a['db_with_chunk_rows_mb']:,.1f} MB | |",
        f"| write everything | {b['write_s']:.2f} s | {a['write_s']:.2f} s | |",
        f"| read the rows back | | {a['read_rows_s']:.2f} s | |",
        "",
        "The job rows (parent and chunks, each chunk's spec listing its combinations) are the "
        "same in both layouts and included in both.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--combos", type=int, default=150_000)
    parser.add_argument("--results", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="results-size-"))
    try:
        report = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "backtests": [
                backtest_sizes(folder, ["AAPL"], args.results),
                backtest_sizes(folder, ["AAPL", "MSFT", "TSLA"], args.results),
            ],
            "sweep": sweep_sizes(folder, args.combos),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "results_size.json").write_text(json.dumps(report, indent=2) + "\n")
    md = _md(report)
    (RESULTS / "results_size.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
