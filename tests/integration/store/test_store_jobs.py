"""store.jobs listings on SQLite and PostgreSQL: filters on the spec, pages, id prefixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from traderunner.domain.jobs import JobKind, JobRecord, JobState, Queue
from traderunner.errors import DataRangeError, UserInputError
from traderunner.store import Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _job(i: int, strategy: str, symbols: list[str], owner: str, **kw: object) -> JobRecord:
    return JobRecord(
        id=kw.pop("id", f"job{i:04d}"),  # type: ignore[arg-type]
        kind=kw.pop("kind", JobKind.BACKTEST),  # type: ignore[arg-type]
        spec={"strategy": strategy, "symbols": symbols, "name": "AAA"},
        state=JobState.SUCCEEDED,
        queue=Queue.INTERACTIVE,
        owner=owner,
        created_at=T0 + timedelta(minutes=i),
        **kw,  # type: ignore[arg-type]
    )


def test_pages_filter_by_spec_owner_and_time(store: Store) -> None:
    store.jobs.insert(
        [
            _job(0, "sma_cross", ["AAA"], "ana"),
            _job(1, "ema_cross", ["AAA", "BBB"], "ana"),
            _job(2, "sma_cross", ["BBB"], "bob", id="sweep1", kind=JobKind.SWEEP),
            _job(3, "sma_cross", ["BBB"], "bob", id="sweep1-0000", parent="sweep1",
                 kind=JobKind.SWEEP_CHUNK),
        ]
    )  # fmt: skip

    def ids(**filters: object) -> list[str]:
        return [r.id for r in store.jobs.page(**filters).items]  # type: ignore[arg-type]

    assert ids() == ["sweep1", "job0001", "job0000"]  # top level, newest first
    assert ids(top_level=False)[0] == "sweep1-0000"
    assert ids(strategy="sma_cross") == ["sweep1", "job0000"]
    assert ids(symbol="BBB") == ["sweep1", "job0001"]
    assert ids(symbol="AAA", owner="ana", strategy="ema_cross") == ["job0001"]
    assert ids(symbol="AA") == []  # a whole element, and not the spec's name "AAA" either
    assert ids(created_from=T0 + timedelta(minutes=1)) == ["sweep1", "job0001"]
    assert ids(created_before=T0 + timedelta(minutes=1)) == ["job0000"]
    assert ids(kinds=[JobKind.SWEEP]) == ["sweep1"]
    page = store.jobs.page(limit=2, offset=2)
    assert page.total == 3 and [r.id for r in page.items] == ["job0000"] and not page.more
    with pytest.raises(DataRangeError):
        store.jobs.page(limit=0)
    assert store.jobs.resolve("swee") == "sweep1"  # not its chunk
    assert store.jobs.resolve("sweep1-") == "sweep1-0000"
    with pytest.raises(UserInputError, match="ambiguous: job0000, job0001"):
        store.jobs.resolve("job0")
