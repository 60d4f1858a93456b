"""The run read model's pure values: what one saved run is, and a page of a listing.

A *run* is one backtest or one sweep, run here (``origin = local``) or as a durable job
(``origin = job``, and its id is the job's id). Every run is saved with an owner: the OS user
for the CLI (``--owner`` to say another), the logged-in user for the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from traderunner.errors import PermissionDeniedError

#: The columns of a run's trade list, in order (the engine writes them, reports read them).
TRADE_COLUMNS = (
    "symbol",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "fees",
    "return",
    "bars",
    "exit_reason",
)


class RunKind(StrEnum):
    BACKTEST = "backtest"
    SWEEP = "sweep"


class RunOrigin(StrEnum):
    LOCAL = "local"  # run in the process that saved it (``traderunner backtest``)
    JOB = "job"  # run by a worker; the run's id is the job's id


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One saved run as the store lists it (its tables are read separately).

    ``params`` are a backtest's parameters or a sweep's grid (name -> values); ``options`` are
    every engine option (defaults included); ``metrics`` are a backtest's portfolio metrics or a
    sweep's best row by Sharpe; ``summary`` is the rest of what the run reported (sources, bars,
    per-symbol metrics, period, combinations ...). ``tables`` names the stored tables (equity,
    prices, trade list, sweep rows) and ``size_bytes`` is what the run takes in the store.
    """

    id: str
    kind: RunKind
    origin: RunOrigin
    owner: str
    created_at: datetime
    strategy: str
    symbols: tuple[str, ...]
    timeframe: str
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    size_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (ISO-8601 time, enum values, lists)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "origin": self.origin.value,
            "owner": self.owner,
            "created_at": self.created_at.isoformat(),
            "strategy": self.strategy,
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
            "name": self.name,
            "params": dict(self.params),
            "options": dict(self.options),
            "metrics": dict(self.metrics),
            "summary": dict(self.summary),
            "tables": list(self.tables),
            "size_bytes": self.size_bytes,
        }


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: ``items`` from ``offset``, and how many match in ``total``."""

    items: Sequence[T]
    total: int
    offset: int = 0
    limit: int | None = None

    @property
    def more(self) -> bool:
        """Whether items follow this page."""
        return self.offset + len(self.items) < self.total

    def __iter__(self) -> Iterator[T]:
        """The page's items (so a page reads like the list it holds)."""
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def ensure_may_change(owner: str, actor: str, *, is_admin: bool, what: str) -> None:
    """Refuse (PermissionDeniedError) when ``actor`` changes ``what`` that another user owns.

    The owner and admins may; a job or run without an owner (saved before owners were
    recorded) may be changed by anyone.
    """
    if is_admin or not owner or owner == actor:
        return
    raise PermissionDeniedError(
        f"{what} belongs to {owner!r}, not to {actor!r}: only its owner or an admin may change "
        "it (the CLI: --admin)"
    )
