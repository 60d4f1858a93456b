"""Saved backtest results: ``store.results``.

A result is saved under an id (the job id when it ran as a job). Saving is idempotent by id:
saving again under an existing id writes nothing and returns the id, so a redelivered job that
already wrote its result cannot write a second or different copy.

Records come back as plain dicts::

    {"id", "created_at" (ISO-8601 UTC), "name", "strategy", "symbols" (list), "timeframe",
     "params", "options", "metrics"}            # list()
    ... plus "summary" (the whole saved dict)   # get()
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from traderunner.errors import DataRangeError, StoreError
from traderunner.store.schema import backtest_results as results_table

if TYPE_CHECKING:
    from traderunner.store.store import Store

MAX_ID_LENGTH = 64
_LIST_COLUMNS = (
    "id",
    "created_at",
    "name",
    "strategy",
    "symbols",
    "timeframe",
    "params",
    "options",
    "metrics",
)


class ResultRepository:
    """``store.results``: save, get and list backtest results."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def save(
        self,
        summary: Mapping[str, Any],
        *,
        result_id: str | None = None,
        name: str | None = None,
        timeframe: str | None = None,
    ) -> str:
        """Save ``summary`` (``BacktestResult.to_dict(curve=True)``) and return its id.

        Without ``result_id`` a new random id is made. An id that is already saved is left
        as it is (idempotent). ``name`` and ``timeframe`` default to the summary's ``name``
        and ``timeframe`` keys when it has them. NaN and infinities are stored as null;
        values JSON cannot hold raise StoreError naming where they are.
        """
        if not isinstance(summary, Mapping):
            raise StoreError(
                f"a result summary must be a mapping, got {type(summary).__name__}: save "
                "BacktestResult.to_dict(curve=True)"
            )
        rid = _check_id(result_id) if result_id is not None else uuid.uuid4().hex
        clean = _json_safe(summary, "summary")
        assert isinstance(clean, dict)
        tf = timeframe if timeframe is not None else clean.get("timeframe")
        title = name if name is not None else clean.get("name")
        values = {
            "id": rid,
            "created_at": datetime.now(UTC),
            "strategy": str(clean.get("strategy") or ""),
            "symbols": [str(s) for s in clean.get("symbols") or []],
            "timeframe": None if tf is None else str(getattr(tf, "value", tf)),
            "name": None if title is None else str(title),
            "params": clean.get("params") or {},
            "options": clean.get("options") or {},
            "metrics": clean.get("metrics") or {},
            "summary": clean,
        }
        with self._store.transaction(f"save result {rid!r}") as conn:
            dialect = conn.dialect.name
            if dialect in ("sqlite", "postgresql"):
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                conn.execute(insert(results_table).values(**values).on_conflict_do_nothing())
            elif (
                conn.execute(sa.select(results_table.c.id).where(results_table.c.id == rid)).first()
                is None
            ):
                conn.execute(results_table.insert().values(**values))
        return rid

    def get(self, result_id: str) -> dict[str, Any] | None:
        """The saved record with its ``summary``, or None if there is no such id."""
        with self._store.transaction(f"read result {result_id!r}") as conn:
            row = conn.execute(
                sa.select(results_table).where(results_table.c.id == str(result_id))
            ).one_or_none()
        if row is None:
            return None
        record = _record(row._mapping)
        record["summary"] = row._mapping["summary"]
        return record

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` records (without their summaries), newest first."""
        if int(limit) < 1:
            raise DataRangeError(f"limit must be at least 1, got {limit}")
        t = results_table
        query = (
            sa.select(*(t.c[name] for name in _LIST_COLUMNS))
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(int(limit))
        )
        with self._store.transaction("list results") as conn:
            rows = conn.execute(query).all()
        return [_record(row._mapping) for row in rows]


def _check_id(result_id: str) -> str:
    rid = str(result_id).strip()
    if not rid or len(rid) > MAX_ID_LENGTH:
        raise StoreError(
            f"result id {result_id!r} must be 1 to {MAX_ID_LENGTH} characters: use the job "
            "id or leave it out for a new one"
        )
    return rid


def _record(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    out = {name: mapping[name] for name in _LIST_COLUMNS}
    created = out["created_at"]
    if isinstance(created, datetime):
        # SQLite returns naive datetimes; everything the store writes is UTC.
        aware = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        out["created_at"] = aware.astimezone(UTC).isoformat()
    return out


def _json_safe(value: Any, where: str) -> Any:
    """``value`` with NaN/inf -> None, NumPy scalars/arrays -> Python, datetimes -> ISO."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return _json_safe(value.value, where)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _json_safe(value.item(), where)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist(), where)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise StoreError(
        f"cannot save the result: {where} is a {type(value).__name__}, which JSON cannot "
        "hold; save BacktestResult.to_dict(curve=True)"
    )
