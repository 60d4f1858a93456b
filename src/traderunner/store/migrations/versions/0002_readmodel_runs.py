"""Runs: one read model for every backtest and sweep, with an owner and compact tables.

``backtest_results`` (the whole summary as JSON, equity curve and trade list included) becomes
``runs`` (what is listed and filtered, as columns and small JSON) plus ``run_tables`` (equity
curve, trade list, a sweep's rows: compressed Parquet blobs). A finished sweep's table moves from
``job_results`` to a run; a sweep chunk's rows move from JSON into ``job_results.data``.

Existing rows are carried over: a result saved by a job gets the job's owner and ``origin =
job``; a result saved by a local run (no job row) gets ``origin = local`` and an empty owner
(it was not recorded; the CLI lists it as unknown).

Revision ID: 0002_readmodel_runs
Revises: 0001_baseline
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_readmodel_runs"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

_COLUMNS = ("strategy", "symbols", "params", "options", "metrics")

_jobs = sa.table(
    "jobs",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("owner", sa.String),
    sa.column("spec", sa.JSON),
)
_job_results = sa.table(
    "job_results",
    sa.column("job_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("payload", sa.JSON),
    sa.column("data", sa.LargeBinary),
)
_backtest_results = sa.table(
    "backtest_results",
    sa.column("id", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("strategy", sa.String),
    sa.column("symbols", sa.JSON),
    sa.column("timeframe", sa.String),
    sa.column("name", sa.String),
    sa.column("params", sa.JSON),
    sa.column("options", sa.JSON),
    sa.column("metrics", sa.JSON),
    sa.column("summary", sa.JSON),
)


def _create_tables() -> tuple[sa.Table, sa.Table]:
    runs = op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("symbols", sa.JSON, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    for column in ("kind", "owner", "created_at", "strategy"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    tables = op.create_table(
        "run_tables",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_run_tables"),
    )
    assert runs is not None and tables is not None
    return runs, tables


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _best(rows: list[dict[str, Any]], by: str = "sharpe") -> dict[str, Any]:
    scored = [r for r in rows if isinstance(r.get(by), int | float) and r[by] == r[by]]
    return dict(max(scored, key=lambda r: r[by])) if scored else {}


def _equity_frame(points: list[Any]) -> Any:
    import pandas as pd

    times = [p[0] for p in points]
    values = [float("nan") if p[1] is None else float(p[1]) for p in points]
    return pd.DataFrame({"ts": pd.to_datetime(times, utc=True, format="ISO8601"), "equity": values})


def _write_run(
    conn: sa.Connection,
    runs: sa.Table,
    run_tables: sa.Table,
    values: dict[str, Any],
    tables: dict[str, Any],
) -> None:
    from traderunner.store import tables as codec

    encoded = {name: codec.encode(data) for name, data in tables.items()}
    doc = {k: values[k] for k in ("params", "options", "metrics", "summary")}
    values["size_bytes"] = sum(len(b) for b, _ in encoded.values()) + len(json.dumps(doc))
    conn.execute(runs.insert().values(**values))
    for name, (blob, n) in encoded.items():
        conn.execute(
            run_tables.insert().values(
                run_id=values["id"], name=name, format=codec.FORMAT, rows=n, data=blob
            )
        )


def upgrade() -> None:
    runs, run_tables = _create_tables()
    with op.batch_alter_table("job_results") as batch:
        batch.add_column(sa.Column("data", sa.LargeBinary, nullable=True))
    conn = op.get_bind()
    jobs = {
        row.id: row
        for row in conn.execute(sa.select(_jobs.c.id, _jobs.c.kind, _jobs.c.owner, _jobs.c.spec))
    }

    for row in conn.execute(sa.select(_backtest_results)).mappings().all():
        summary = dict(row["summary"] or {})
        tables: dict[str, Any] = {}
        points = summary.pop("equity", None)
        if isinstance(points, list) and points:
            frame = _equity_frame(points)
            tables["equity"] = frame
            summary["first_bar"] = frame["ts"].iloc[0].isoformat()
            summary["last_bar"] = frame["ts"].iloc[-1].isoformat()
        for key, value in list(summary.items()):
            if _is_records(value):
                tables[key] = value
                del summary[key]
        for key in (*_COLUMNS, "name", "timeframe"):
            summary.pop(key, None)
        summary.setdefault("period", "")
        job = jobs.get(row["id"])
        _write_run(
            conn,
            runs,
            run_tables,
            {
                "id": row["id"],
                "kind": "backtest",
                "origin": "job" if job is not None else "local",
                "owner": job.owner if job is not None else "",
                "created_at": row["created_at"],
                "strategy": row["strategy"] or "",
                "symbols": list(row["symbols"] or []),
                "timeframe": row["timeframe"] or "",
                "name": row["name"] or "",
                "params": dict(row["params"] or {}),
                "options": dict(row["options"] or {}),
                "metrics": dict(row["metrics"] or {}),
                "summary": summary,
            },
            tables,
        )

    from traderunner.store import tables as codec

    moved: list[str] = []
    for row in conn.execute(sa.select(_job_results)).mappings().all():
        payload = dict(row["payload"] or {})
        rows = payload.get("rows")
        job = jobs.get(row["job_id"])
        if job is None or not isinstance(rows, list) or not _is_records(rows):
            continue
        if row["kind"] == "sweep" and job.kind == "sweep":
            spec = dict(job.spec or {})
            _write_run(
                conn,
                runs,
                run_tables,
                {
                    "id": row["job_id"],
                    "kind": "sweep",
                    "origin": "job",
                    "owner": job.owner,
                    "created_at": row["created_at"],
                    "strategy": str(spec.get("strategy") or ""),
                    "symbols": list(spec.get("symbols") or []),
                    "timeframe": str(spec.get("timeframe") or ""),
                    "name": str(spec.get("name") or ""),
                    "params": dict(spec.get("grid") or {}),
                    "options": dict(spec.get("options") or {}),
                    "metrics": _best(rows),
                    "summary": {
                        **{k: v for k, v in payload.items() if k != "rows"},
                        "period": "",
                        "combinations": len(rows),
                        "rank_by": "sharpe",
                    },
                },
                {"rows": rows},
            )
            moved.append(row["job_id"])
        elif row["kind"] == "sweep_chunk":
            blob, _ = codec.encode(rows)
            conn.execute(
                _job_results.update()
                .where(_job_results.c.job_id == row["job_id"])
                .values(payload={k: v for k, v in payload.items() if k != "rows"}, data=blob)
            )
    if moved:
        conn.execute(_job_results.delete().where(_job_results.c.job_id.in_(moved)))

    op.drop_index("ix_backtest_results_created_at", table_name="backtest_results")
    op.drop_index("ix_backtest_results_strategy", table_name="backtest_results")
    op.drop_table("backtest_results")


def downgrade() -> None:
    """Back to 0.1's tables: backtests to ``backtest_results``, job sweeps to ``job_results``.

    A local sweep has no place in the 0.1 schema and is dropped; owners are kept on job rows.
    """
    import numpy as np

    from traderunner.store import tables as codec

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
    conn = op.get_bind()
    runs = sa.table(
        "runs",
        *(sa.column(c, sa.JSON) for c in ("symbols", "params", "options", "metrics", "summary")),
        *(sa.column(c, sa.String) for c in ("id", "kind", "origin", "strategy", "timeframe")),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    run_tables = sa.table(
        "run_tables",
        sa.column("run_id", sa.String),
        sa.column("name", sa.String),
        sa.column("data", sa.LargeBinary),
    )
    for row in conn.execute(sa.select(runs)).mappings().all():
        blobs = {
            str(name): bytes(data)
            for name, data in conn.execute(
                sa.select(run_tables.c.name, run_tables.c.data).where(
                    run_tables.c.run_id == row["id"]
                )
            )
        }
        if row["kind"] == "backtest":
            summary = {
                "strategy": row["strategy"],
                "params": row["params"],
                "options": row["options"],
                "symbols": row["symbols"],
                "metrics": row["metrics"],
                **dict(row["summary"] or {}),
            }
            for name, blob in blobs.items():
                if name == "equity":
                    frame = codec.decode_frame(blob)
                    ns = frame["ts"].to_numpy(dtype="datetime64[ns]")
                    times = np.datetime_as_string(ns, unit="s", timezone="UTC").tolist()
                    values = [None if v != v else float(v) for v in frame["equity"].tolist()]
                    summary["equity"] = [list(p) for p in zip(times, values, strict=True)]
                elif not name.startswith("price:"):
                    summary[name] = codec.decode_records(blob)
            summary["name"] = row["name"]
            summary["timeframe"] = row["timeframe"]
            conn.execute(
                _backtest_results.insert().values(
                    id=row["id"],
                    created_at=row["created_at"],
                    strategy=row["strategy"],
                    symbols=row["symbols"],
                    timeframe=row["timeframe"] or None,
                    name=row["name"] or None,
                    params=row["params"],
                    options=row["options"],
                    metrics=row["metrics"],
                    summary=summary,
                )
            )
        elif row["kind"] == "sweep" and row["origin"] == "job" and "rows" in blobs:
            payload = {**dict(row["summary"] or {}), "rows": codec.decode_records(blobs["rows"])}
            for key in ("period", "rank_by"):
                payload.pop(key, None)
            conn.execute(
                _job_results.insert().values(
                    job_id=row["id"], kind="sweep", created_at=row["created_at"], payload=payload
                )
            )
    chunks = conn.execute(
        sa.select(_job_results.c.job_id, _job_results.c.payload, _job_results.c.data).where(
            _job_results.c.data.is_not(None)
        )
    ).all()
    for chunk in chunks:
        payload = {**dict(chunk.payload or {}), "rows": codec.decode_records(bytes(chunk.data))}
        conn.execute(
            _job_results.update()
            .where(_job_results.c.job_id == chunk.job_id)
            .values(payload=payload)
        )
    with op.batch_alter_table("job_results") as batch:
        batch.drop_column("data")
    op.drop_table("run_tables")
    for column in ("kind", "owner", "created_at", "strategy"):
        op.drop_index(f"ix_runs_{column}", table_name="runs")
    op.drop_table("runs")
