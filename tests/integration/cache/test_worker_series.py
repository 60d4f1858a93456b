"""Workers read candles through the series cache: a sweep loads its series from the store once.

In process: the chunks run through ``runner.execute`` with a real WorkerContext (real store,
real Redis, real MarketCache) while the sqlite3 driver counts reads of the candles table. With
real workers: a Celery worker with two pool processes runs the sweep, and the counters every
worker process adds to the cache Redis say how often the store was read.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.cache.helpers import CandleQueries
from tests.jobenv import job_env, make_settings
from tests.jobhelpers import seed_candles
from tests.redishelpers import RedisPair
from traderunner.cache import read_stats
from traderunner.domain.jobs import JobState
from traderunner.jobs import SweepSpec
from traderunner.jobs.client import JobClient
from traderunner.jobs.runner import WorkerContext, execute
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys
from traderunner.store import Store

GRID = {"fast": [3, 5, 8, 13], "slow": [10, 20, 30]}  # 12 combinations, 9 valid


@pytest.mark.parametrize("cached", [True, False], ids=["market-cache", "store-only"])
def test_sweep_chunks_in_process_load_the_series_once(
    redis_pair: RedisPair, tmp_path: Path, cached: bool
) -> None:
    settings = make_settings(redis_pair, tmp_path)
    store = Store.connect(settings.resolved_store_url)
    seed_candles(store, ["AAA"], days=5)
    client = JobClient.open(settings, store=store)
    ctx = WorkerContext.open(settings, "in-process", store=store, cache=cached)
    try:
        sweep = client.submit(SweepSpec("sma_cross", ("AAA",), GRID, "M5", chunk_size=3))
        chunks = client.children(sweep.id)
        assert len(chunks) == 4
        queries = CandleQueries(store)
        for chunk in chunks:
            assert execute(ctx, chunk.id) == "succeeded"
        assert client.status(sweep.id).state is JobState.SUCCEEDED
        assert queries.count == (1 if cached else len(chunks)), queries.statements
    finally:
        ctx.close()
        client.close()


def test_real_workers_load_the_series_once_for_all_chunks(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    with job_env(redis_pair, tmp_path, concurrency=2) as env:
        sweep = env.client.submit(SweepSpec("sma_cross", ("AAA",), GRID, "M5", chunk_size=3))
        assert len(env.client.children(sweep.id)) == 4
        done = env.client.wait(sweep.id, timeout=120)
        assert done.state is JobState.SUCCEEDED, done.error
        cache = connect(env.settings.cache_url, decode=False)
        try:
            # Each worker process adds its counts to Redis about once a second.
            deadline = time.monotonic() + 30
            while True:
                series = read_stats(cache, Keys(env.settings.redis_prefix)).kinds.get("series", {})
                reads = sum(series.get(w, 0) for w in ("hits", "local_hits", "misses"))
                if reads >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        finally:
            cache.close()
        assert reads == 4, env.worker.logs()  # one series read per chunk
        assert series["store_loads"] == 1 and series["errors"] == 0
