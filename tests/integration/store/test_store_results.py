"""store.results: idempotent saves, full round trips, newest-first listing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from traderunner.errors import DataRangeError, StoreError
from traderunner.store import Store


def summary(strategy: str = "sma_cross", fast: int = 10, sharpe: float = 1.25) -> dict[str, Any]:
    """A dict of the shape BacktestResult.to_dict(curve=True) returns."""
    return {
        "strategy": strategy,
        "params": {"fast": fast, "slow": 30},
        "options": {"fill": "next_open", "direction": "long", "cash": 100000.0},
        "symbols": ["TSLA", "AAPL"],
        "sources": {"TSLA": "synthetic", "AAPL": "synthetic"},
        "trades": 2,
        "metrics": {"total_return": 0.05, "sharpe": sharpe, "max_drawdown": -0.02, "trades": 2},
        "per_symbol": {
            "TSLA": {"metrics": {"sharpe": 0.5}, "trades": 1},
            "AAPL": {"metrics": {"sharpe": 2.0}, "trades": 1},
        },
        "trade_list": [
            {"symbol": "TSLA", "entry_time": "2025-01-02T14:35:00+00:00", "pnl": 12.5},
            {"symbol": "AAPL", "entry_time": "2025-01-03T15:00:00+00:00", "pnl": -3.0},
        ],
        "equity": [["2025-01-02T14:30:00+00:00", 100000.0], ["2025-01-02T14:35:00+00:00", 1e5]],
        "timeframe": "M5",
    }


def test_save_then_get_returns_the_whole_summary(store: Store) -> None:
    saved = summary()
    rid = store.results.save(saved, result_id="job-1", name="first try")
    assert rid == "job-1"
    record = store.results.get("job-1")
    assert record is not None
    assert record["summary"] == saved
    # Key order of the summary survives (symbols and metrics are shown in this order).
    assert list(record["summary"]["per_symbol"]) == ["TSLA", "AAPL"]
    assert list(record["summary"]["metrics"]) == list(saved["metrics"])
    assert record["id"] == "job-1"
    assert record["name"] == "first try"
    assert record["strategy"] == "sma_cross"
    assert record["symbols"] == ["TSLA", "AAPL"]
    assert record["timeframe"] == "M5"
    assert record["params"] == {"fast": 10, "slow": 30}
    assert record["metrics"]["sharpe"] == 1.25
    created = datetime.fromisoformat(record["created_at"])
    assert created.tzinfo is not None
    assert abs((datetime.now(UTC) - created).total_seconds()) < 300


def test_saving_an_existing_id_again_changes_nothing(store: Store) -> None:
    store.results.save(summary(sharpe=1.0), result_id="job-7")
    again = store.results.save(summary(sharpe=9.0), result_id="job-7")
    assert again == "job-7"
    record = store.results.get("job-7")
    assert record is not None
    assert record["metrics"]["sharpe"] == 1.0
    assert [r["id"] for r in store.results.list()] == ["job-7"]


def test_without_an_id_each_save_gets_a_new_one(store: Store) -> None:
    a = store.results.save(summary())
    b = store.results.save(summary())
    assert a != b
    assert {r["id"] for r in store.results.list()} == {a, b}


def test_list_is_newest_first_limited_and_light(store: Store) -> None:
    ids = [store.results.save(summary(fast=i), result_id=f"r{i}") for i in range(5)]
    listed = store.results.list(limit=3)
    assert len(listed) == 3
    stamps = [r["created_at"] for r in store.results.list()]
    assert stamps == sorted(stamps, reverse=True)
    assert {r["id"] for r in store.results.list(limit=50)} == set(ids)
    assert all("summary" not in r for r in listed)
    assert all(r["strategy"] == "sma_cross" for r in listed)
    with pytest.raises(DataRangeError, match="at least 1"):
        store.results.list(limit=0)


def test_unknown_id_is_none(store: Store) -> None:
    assert store.results.get("nope") is None


def test_nan_inf_and_numpy_values_are_stored_as_json(store: Store) -> None:
    raw = summary()
    raw["metrics"] = {
        "sharpe": float("nan"),
        "profit_factor": math.inf,
        "trades": np.int64(3),
        "cagr": np.float64(0.1),
    }
    raw["params"] = {"fast": np.int32(5), "when": datetime(2025, 1, 2, tzinfo=UTC)}
    rid = store.results.save(raw)
    record = store.results.get(rid)
    assert record is not None
    assert record["metrics"] == {"sharpe": None, "profit_factor": None, "trades": 3, "cagr": 0.1}
    assert record["summary"]["params"] == {"fast": 5, "when": "2025-01-02T00:00:00+00:00"}


def test_values_json_cannot_hold_are_refused_by_name(store: Store) -> None:
    raw = summary()
    raw["options"] = {"callback": object()}
    with pytest.raises(StoreError, match=r"summary\.options\.callback is a object"):
        store.results.save(raw)
    with pytest.raises(StoreError, match="1 to 64 characters"):
        store.results.save(summary(), result_id="x" * 65)
    assert store.results.list() == []
