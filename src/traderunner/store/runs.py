"""Saved runs, the read model of the CLI's ``results`` and the dashboard: ``store.runs``.

Every backtest and sweep, run here or by a worker, is saved as one ``runs`` row (what is
listed and filtered: kind, origin, owner, strategy, symbols, timeframe, params, options,
metrics, summary) and its tables in ``run_tables`` (equity and price curves, the trade list, a
sweep's rows), each a compressed Parquet blob (``store/tables.py``).

Saving is idempotent by id: a run whose id is saved already is left as it is, so a redelivered
job (its run id is the job id) cannot write a second or different copy. Ids are random hex for
local runs; every reading call also accepts a unique prefix of at least four characters
(:meth:`RunRepository.resolve`), as git does.

Nothing here imports the engine: a backtest result is read through :class:`BacktestLike`.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from traderunner.domain.candles import CandleArrays
from traderunner.domain.jsonsafe import json_safe
from traderunner.domain.runs import Page, RunKind, RunOrigin, RunRecord
from traderunner.errors import DataRangeError, StoreError
from traderunner.store import tables as codec
from traderunner.store.query import CANDIDATE_LIMIT, check_prefix, json_array_contains, one_match
from traderunner.store.schema import job_results, run_tables, runs

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from traderunner.store.store import Store

    TableData: TypeAlias = pd.DataFrame | Sequence[Mapping[str, Any]] | pa.Table

MAX_ID_LENGTH = 64
_LISTING = "traderunner results list"
# Columns of the summary that are columns of their own (not repeated inside ``summary``).
_COLUMNS = ("strategy", "symbols", "params", "options", "metrics")
_RANK_BY = "sharpe"


class BacktestLike(Protocol):
    """What :meth:`RunRepository.save_backtest` reads of a ``BacktestResult`` (duck-typed, so
    the store does not import the engine)."""

    @property
    def equity(self) -> pd.Series: ...

    def to_dict(self, curve: bool = False) -> dict[str, Any]: ...


class RunRepository:
    """``store.runs``: save, read, list, resolve, delete and prune runs."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- saving ------------------------------------------------------------------------------

    def save(
        self,
        record: RunRecord,
        tables: Mapping[str, TableData] | None = None,
        *,
        drop_job_results: Sequence[str] = (),
    ) -> bool:
        """Insert ``record`` and its tables unless its id is saved; True when this call wrote it.

        ``drop_job_results`` names job results the run supersedes (a sweep's chunk rows): they
        are deleted in the same transaction, only when the run is written.
        """
        _check_id(record.id)
        encoded = {name: codec.encode(data) for name, data in (tables or {}).items()}
        try:
            doc = {
                name: json_safe(getattr(record, name), f"run.{name}")
                for name in ("params", "options", "metrics", "summary")
            }
        except TypeError as exc:
            raise StoreError(
                f"cannot save the run: {exc}; save BacktestResult.to_dict() values"
            ) from None
        size = sum(len(blob) for blob, _ in encoded.values()) + len(json.dumps(doc))
        values = {
            "id": record.id,
            "kind": record.kind.value,
            "origin": record.origin.value,
            "owner": record.owner,
            "created_at": record.created_at,
            "strategy": record.strategy,
            "symbols": list(record.symbols),
            "timeframe": record.timeframe,
            "name": record.name,
            **doc,
            "size_bytes": size,
        }
        blobs = [
            {"run_id": record.id, "name": name, "format": codec.FORMAT, "rows": n, "data": blob}
            for name, (blob, n) in encoded.items()
        ]
        with self._store.transaction(f"save run {record.id!r}") as conn:
            if not _insert_if_absent(conn, runs, values, runs.c.id == record.id):
                return False
            if blobs:
                conn.execute(run_tables.insert(), blobs)
            for part in _chunks(list(drop_job_results)):
                conn.execute(job_results.delete().where(job_results.c.job_id.in_(part)))
        return True

    def save_backtest(
        self,
        result: BacktestLike,
        *,
        owner: str,
        origin: RunOrigin = RunOrigin.LOCAL,
        run_id: str | None = None,
        timeframe: str,
        name: str = "",
        period: str = "",
        prices: Mapping[str, CandleArrays] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Save a backtest result and return its run id (new and random unless given).

        The summary is ``result.to_dict()`` plus ``details`` (what the run printed beside it,
        such as how its timeframe was chosen); its lists of records (the trade list, and any
        other a result reports) become tables, as do the equity curve and, from ``prices``
        (the candles it ran on), each symbol's close.
        """
        import pandas as pd

        rid = _check_id(run_id) if run_id is not None else uuid.uuid4().hex
        summary = dict(result.to_dict())
        summary.update(details or {})
        summary.pop("equity", None)
        tables: dict[str, TableData] = {}
        for key, value in list(summary.items()):
            if _is_records(value):
                tables[key] = value
                del summary[key]
        equity = result.equity
        tables["equity"] = pd.DataFrame({"ts": equity.index, "equity": equity.to_numpy()})
        for symbol, candles in (prices or {}).items():
            tables[f"price:{symbol}"] = pd.DataFrame(
                {"ts": pd.to_datetime(candles.ts, utc=True), "close": candles.close}
            )
        summary["period"] = period
        if len(equity):
            summary["first_bar"] = json_safe(equity.index[0])
            summary["last_bar"] = json_safe(equity.index[-1])
        if prices:
            summary["bars"] = {s: len(c) for s, c in prices.items()}
        record = RunRecord(
            id=rid,
            kind=RunKind.BACKTEST,
            origin=origin,
            owner=owner,
            created_at=datetime.now(UTC),
            strategy=str(summary.get("strategy") or ""),
            symbols=tuple(str(s) for s in summary.get("symbols") or ()),
            timeframe=timeframe,
            name=name,
            params=dict(summary.get("params") or {}),
            options=dict(summary.get("options") or {}),
            metrics=dict(summary.get("metrics") or {}),
            summary={k: v for k, v in summary.items() if k not in _COLUMNS},
        )
        self.save(record, tables)
        return rid

    def save_sweep(
        self,
        rows: TableData,
        *,
        owner: str,
        strategy: str,
        symbols: Sequence[str],
        timeframe: str,
        grid: Mapping[str, Sequence[Any]],
        options: Mapping[str, Any],
        origin: RunOrigin = RunOrigin.LOCAL,
        run_id: str | None = None,
        name: str = "",
        period: str = "",
        summary: Mapping[str, Any] | None = None,
        drop_job_results: Sequence[str] = (),
    ) -> str:
        """Save a sweep's rows (parameters then metrics, one per combination); its id.

        ``summary`` adds what the sweep reported (skipped, compute time, chunks, sources); the
        best row by Sharpe is kept as the run's metrics, for listing.
        """
        rid = _check_id(run_id) if run_id is not None else uuid.uuid4().hex
        table = codec.to_arrow(rows)
        best = _best_row(table, _RANK_BY)
        record = RunRecord(
            id=rid,
            kind=RunKind.SWEEP,
            origin=origin,
            owner=owner,
            created_at=datetime.now(UTC),
            strategy=strategy,
            symbols=tuple(symbols),
            timeframe=timeframe,
            name=name,
            params={k: list(v) for k, v in grid.items()},
            options=dict(options),
            metrics=best,
            summary={
                **dict(summary or {}),
                "period": period,
                "combinations": table.num_rows,
                "rank_by": _RANK_BY,
            },
        )
        self.save(record, {"rows": table}, drop_job_results=drop_job_results)
        return rid

    # -- reading -----------------------------------------------------------------------------

    def resolve(self, text: str) -> str:
        """The id of the one run whose id is ``text`` or starts with it; one-line errors."""
        prefix = check_prefix(text, "result", _LISTING)
        query = (
            sa.select(runs.c.id)
            .where(runs.c.id.startswith(prefix, autoescape=True))
            .order_by(runs.c.id)
            .limit(CANDIDATE_LIMIT)
        )
        with self._store.transaction("find a run") as conn:
            found = list(conn.execute(query).scalars())
        return one_match(prefix, found, "result", _LISTING)

    def get(self, run_id: str) -> RunRecord | None:
        """The run with exactly this id (see :meth:`resolve` for prefixes), or None."""
        with self._store.transaction(f"read run {run_id!r}") as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == str(run_id))).mappings().first()
            names = (
                list(
                    conn.execute(
                        sa.select(run_tables.c.name)
                        .where(run_tables.c.run_id == str(run_id))
                        .order_by(run_tables.c.name)
                    ).scalars()
                )
                if row
                else []
            )
        return None if row is None else replace(_record(row), tables=tuple(names))

    def list(
        self,
        *,
        strategy: str | None = None,
        symbol: str | None = None,
        owner: str | None = None,
        kind: RunKind | None = None,
        origin: RunOrigin | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> Page[RunRecord]:
        """Runs matching every filter given, newest first, and how many match in all."""
        if limit is not None and int(limit) < 1:
            raise DataRangeError(f"limit must be at least 1, got {limit}")
        if int(offset) < 0:
            raise DataRangeError(f"offset must be >= 0, got {offset}")
        conditions: builtins.list[sa.ColumnElement[bool]] = []
        if strategy:
            conditions.append(runs.c.strategy == strategy)
        if symbol:
            conditions.append(json_array_contains(runs.c.symbols, symbol, self._store.dialect))
        if owner is not None:
            conditions.append(runs.c.owner == owner)
        if kind is not None:
            conditions.append(runs.c.kind == RunKind(kind).value)
        if origin is not None:
            conditions.append(runs.c.origin == RunOrigin(origin).value)
        if created_from is not None:
            conditions.append(runs.c.created_at >= created_from)
        if created_to is not None:
            conditions.append(runs.c.created_at <= created_to)
        where = sa.and_(sa.true(), *conditions)
        query = (
            sa.select(runs)
            .where(where)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .offset(int(offset))
        )
        if limit is not None:
            query = query.limit(int(limit))
        with self._store.transaction("list runs") as conn:
            rows = conn.execute(query).mappings().all()
            count = sa.select(sa.func.count()).select_from(runs).where(where)
            total = int(conn.execute(count).scalar_one())
        return Page([_record(r) for r in rows], total, int(offset), limit)

    def frames(self, run_id: str, names: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """The run's tables as DataFrames (all, or those of ``names`` that exist)."""
        return {name: codec.decode_frame(blob) for name, blob in self._blobs(run_id, names)}

    def records(self, run_id: str, name: str) -> builtins.list[dict[str, Any]] | None:
        """One table as JSON-like records (None when the run has no such table)."""
        found = self._blobs(run_id, [name])
        return codec.decode_records(found[0][1]) if found else None

    def document(self, run_id: str) -> dict[str, Any] | None:
        """The run as its run printed it with ``--json``: for a backtest
        ``BacktestResult.to_dict()`` (the trade list included, no equity curve); for a sweep
        its summary and every row. None when there is no such run."""
        record = self.get(run_id)
        if record is None:
            return None
        out: dict[str, Any] = {
            "strategy": record.strategy,
            "params": record.params,
            "options": record.options,
            "symbols": list(record.symbols),
            "metrics": record.metrics,
            **record.summary,
        }
        skip = {"equity", *(n for n in record.tables if n.startswith("price:"))}
        for name, blob in self._blobs(run_id, [n for n in record.tables if n not in skip]):
            out[name] = codec.decode_records(blob)
        if record.kind is RunKind.BACKTEST:
            out.setdefault("trade_list", [])
        return out

    def _blobs(self, run_id: str, names: Iterable[str] | None) -> builtins.list[tuple[str, bytes]]:
        query = sa.select(run_tables.c.name, run_tables.c.data).where(
            run_tables.c.run_id == str(run_id)
        )
        if names is not None:
            query = query.where(run_tables.c.name.in_(list(names)))
        with self._store.transaction(f"read the tables of run {run_id!r}") as conn:
            return [(str(n), bytes(d)) for n, d in conn.execute(query.order_by(run_tables.c.name))]

    # -- removing ----------------------------------------------------------------------------

    def delete(self, run_ids: Sequence[str]) -> int:
        """Delete these runs (exact ids) and their tables; how many runs were deleted."""
        deleted = 0
        with self._store.transaction("delete runs") as conn:
            for part in _chunks(list(run_ids)):
                conn.execute(run_tables.delete().where(run_tables.c.run_id.in_(part)))
                deleted += conn.execute(runs.delete().where(runs.c.id.in_(part))).rowcount
        return int(deleted)

    def older_than(self, before: datetime, owner: str | None = None) -> builtins.list[RunRecord]:
        """Runs created before ``before`` (of ``owner`` when given), oldest first."""
        query = sa.select(runs).where(runs.c.created_at < before)
        if owner is not None:
            query = query.where(runs.c.owner == owner)
        with self._store.transaction("find old runs") as conn:
            rows = conn.execute(query.order_by(runs.c.created_at, runs.c.id)).mappings().all()
        return [_record(r) for r in rows]


def _insert_if_absent(
    conn: sa.Connection, table: sa.Table, values: Mapping[str, Any], match: Any
) -> bool:
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        key = next(iter(table.primary_key.columns))
        stmt = insert(table).values(**values).on_conflict_do_nothing().returning(key)
        return conn.execute(stmt).first() is not None
    if conn.execute(sa.select(sa.literal(1)).select_from(table).where(match)).first():
        return False  # pragma: no cover - backends without ON CONFLICT: check, then insert
    conn.execute(table.insert().values(**values))  # pragma: no cover
    return True  # pragma: no cover


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_id(run_id: str) -> str:
    rid = str(run_id).strip()
    if not rid or len(rid) > MAX_ID_LENGTH:
        raise StoreError(
            f"run id {run_id!r} must be 1 to {MAX_ID_LENGTH} characters: use the job id or "
            "leave it out for a new one"
        )
    return rid


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _best_row(table: pa.Table, by: str) -> dict[str, Any]:
    """The row with the highest ``by`` (nulls and NaN never win); {} for no rows."""
    if by not in table.column_names or table.num_rows == 0:
        return {}
    values = table.column(by).to_pylist()
    best, top = None, None
    for i, value in enumerate(values):
        if isinstance(value, int | float) and value == value and (top is None or value > top):
            best, top = i, value
    if best is None:
        return {}
    row = table.slice(best, 1).to_pylist()[0]
    return dict(json_safe(row, "best row"))


def _record(row: Mapping[Any, Any]) -> RunRecord:
    created = row["created_at"]
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # SQLite hands back naive UTC datetimes
    return RunRecord(
        id=row["id"],
        kind=RunKind(row["kind"]),
        origin=RunOrigin(row["origin"]),
        owner=row["owner"],
        created_at=created,
        strategy=row["strategy"],
        symbols=tuple(row["symbols"] or ()),
        timeframe=row["timeframe"],
        name=row["name"],
        params=dict(row["params"] or {}),
        options=dict(row["options"] or {}),
        metrics=dict(row["metrics"] or {}),
        summary=dict(row["summary"] or {}),
        size_bytes=int(row["size_bytes"]),
    )
