"""Bad specs are refused before anything is written or enqueued (no worker needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jobenv import SYMBOLS, make_settings
from tests.jobhelpers import seed_candles
from tests.redishelpers import RedisPair
from traderunner.errors import (
    DataRangeError,
    OptionError,
    ParameterError,
    UnknownStrategyError,
    UserInputError,
)
from traderunner.jobs import JobClient
from traderunner.jobs.queueing import queue_lengths
from traderunner.store import Store


@pytest.fixture(scope="module")
def client(redis_pair: RedisPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobClient]:
    root: Path = tmp_path_factory.mktemp("validation")
    settings = make_settings(redis_pair, root)
    store = Store.connect(settings.resolved_store_url)
    seed_candles(store, SYMBOLS, days=3)
    with JobClient.open(settings, store=store) as c:
        yield c
    store.close()


def bt(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "backtest",
        "strategy": "sma_cross",
        "symbols": ["AAA"],
        "timeframe": "M5",
    }
    spec.update(changes)
    return spec


def sw(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "sweep",
        "strategy": "sma_cross",
        "symbols": ["AAA"],
        "timeframe": "M5",
        "grid": {"fast": [5, 10], "slow": [20, 40]},
    }
    spec.update(changes)
    return spec


BAD: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("unknown strategy", bt(strategy="sma_crosss"), UnknownStrategyError, "sma_cross"),
    ("unknown symbol", bt(symbols=["NOPE"]), DataRangeError, "no M5 candles for 'NOPE'"),
    ("no symbols", bt(symbols=[]), UserInputError, "no symbols"),
    ("unknown timeframe", bt(timeframe="M7"), DataRangeError, "unknown timeframe"),
    ("bad date", bt(start="2025-13-45"), DataRangeError, "2025-13-45"),
    ("start after end", bt(start="2025-06-30", end="2025-06-01"), DataRangeError, "after"),
    ("period without data", bt(start="2001-01-01", end="2001-02-01"), DataRangeError, "none of it"),
    ("unknown parameter", bt(params={"fastt": 3}), ParameterError, "fastt"),
    ("parameter out of bounds", bt(params={"fast": 0}), ParameterError, "minimum"),
    ("parameter wrong type", bt(params={"fast": "ten"}), ParameterError, "int"),
    ("fast >= slow", bt(params={"fast": 50, "slow": 20}), ParameterError, "fast"),
    ("bad mode", bt(params={"mode": "crossing"}), ParameterError, "one of cross, regime"),
    ("unknown option", bt(options={"leverage": 3}), OptionError, "leverage"),
    ("bad option value", bt(options={"stop_loss": 1.5}), OptionError, "stop_loss"),
    ("bad fill", bt(options={"fill": "tomorrow"}), OptionError, "fill"),
    ("unknown kind", {"kind": "rocket"}, UserInputError, "unknown job kind"),
    ("missing strategy", {"kind": "backtest", "symbols": ["AAA"]}, UserInputError, "strategy"),
    ("empty grid", sw(grid={}), UserInputError, "grid"),
    ("grid unknown name", sw(grid={"speed": [1, 2]}), ParameterError, "speed"),
    ("grid out of bounds", sw(grid={"fast": [0, 5], "slow": [20]}), ParameterError, "bounds"),
    ("grid all invalid", sw(grid={"fast": [50], "slow": [20]}), ParameterError, "invalid"),
]


@pytest.mark.parametrize(("label", "spec", "error", "text"), BAD, ids=[b[0] for b in BAD])
def test_bad_spec_is_refused_and_nothing_is_written(
    client: JobClient, label: str, spec: dict[str, Any], error: type[Exception], text: str
) -> None:
    before_jobs = len(client.store.jobs.list(limit=None))
    with pytest.raises(error) as info:
        client.submit(spec)
    message = str(info.value)
    assert text.lower() in message.lower(), message
    assert "\n" not in message and "Traceback" not in message
    assert len(client.store.jobs.list(limit=None)) == before_jobs
    assert sum(queue_lengths(client.redis, client.keys).values()) == 0


@pytest.mark.parametrize(("queue", "level"), [("urgent", 0), ("batch", 7), ("batch", -1)])
def test_bad_queue_or_priority(client: JobClient, queue: str, level: int) -> None:
    with pytest.raises(UserInputError):
        client.submit(bt(), queue=queue, level=level)
    assert client.store.jobs.list(limit=None) == []


def test_unknown_job_id_is_a_clear_error(client: JobClient) -> None:
    calls = (
        client.status,
        client.resolve,
        lambda job_id: client.cancel(job_id, actor="ana"),
        lambda job_id: client.retry(job_id, actor="ana"),
        client.result,
    )
    for call in calls:
        with pytest.raises(UserInputError, match="no job 'deadbeef'"):
            call("deadbeef")


def test_a_good_spec_is_written_then_enqueued(client: JobClient) -> None:
    record = client.submit(bt(params={"fast": 5, "slow": 20}))
    assert client.store.jobs.get(record.id) is not None
    assert queue_lengths(client.redis, client.keys)["interactive"] == 1  # no worker here
    assert client.board.live(record.id)["state"] == "queued"
    # kombu's list for the priority step: interactive level 0 is step 0, batch level 3 is 8.
    assert client.redis.llen(client.keys.celery_queue("interactive")) == 1
    urgent_batch = client.submit(bt(), queue="batch", level=3)
    assert client.redis.llen(client.keys.celery_queue_step("batch", 8)) == 1
    assert queue_lengths(client.redis, client.keys) == {"interactive": 1, "batch": 1}
    assert client.strategy_check("sma_cross").notes()[0].startswith("no worker is running")
    assert client.status(urgent_batch.id).priority == 8
