"""The guide's pipeline with real Celery workers: fetch what a job needs, then backtest.

Workers fetch from the fake EODHD server through the shared limiter and response cache,
report "fetching data (k of n requests)" then "backtesting", and run. A spent quota leaves the
job QUEUED and saying so; two jobs (or a sweep's chunks) needing the same range cause one
fetch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.eodhd.conftest import TOKEN
from tests.integration.eodhd.fake_eodhd import FakeEodhd
from tests.jobenv import JobEnv, make_settings
from tests.jobhelpers import WorkerProcess, wait_all
from tests.redishelpers import RedisPair
from traderunner.domain.jobs import JobState
from traderunner.domain.timeframe import Timeframe
from traderunner.jobs.client import JobClient
from traderunner.jobs.spec import BacktestSpec, SweepSpec
from traderunner.ratelimit import limiter_from_settings
from traderunner.store import Store

START, END = "2024-01-02", "2024-03-28"


@pytest.fixture
def jobs(fake: FakeEodhd, redis_pair: RedisPair, tmp_path: Path) -> Iterator[JobEnv]:
    settings = make_settings(
        redis_pair,
        tmp_path,
        eodhd_token=TOKEN,
        eodhd_base_url=fake.url,
        eodhd_outage_budget=1.0,
    )
    store = Store.connect(settings.resolved_store_url)
    worker = WorkerProcess(settings, tmp_path / "logs", concurrency=2).start()
    client = JobClient.open(settings, store=store)
    env = JobEnv(settings, store, client, worker)
    yield env
    env.close()


def _messages(client: JobClient, job_id: str, out: list[str]) -> threading.Thread:
    def watch() -> None:
        for record in client.follow(job_id, timeout=120, poll_s=0.05):
            if not out or out[-1] != record.message:
                out.append(record.message)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_job_fetches_then_backtests_reporting_both_phases(jobs: JobEnv, fake: FakeEodhd) -> None:
    fake.delay_s = 0.5  # each answer takes a while: the fetch phase is there to be seen
    spec = BacktestSpec("sma_cross", ("AAPL.US", "TSLA.US"), "M5", START, END, fetch="eodhd")
    record = jobs.client.submit(spec, owner="ana")  # nothing stored yet: validation lets it in
    seen: list[str] = []
    watcher = _messages(jobs.client, record.id, seen)
    done = jobs.client.wait(record.id, timeout=120)
    watcher.join(5)
    assert done.state is JobState.SUCCEEDED, (done.error, jobs.worker.logs()[-2000:])
    assert [s.symbol for s in fake.requests()] == ["AAPL.US", "TSLA.US"]
    fetching = [m for m in seen if m.startswith("fetching data (")]
    # k of n, k rising to n (the last one may flash by before the watcher reads it)
    assert fetching and all(m.endswith(" of 2 requests)") for m in fetching), seen
    ks = [int(m.split("(")[1].split()[0]) for m in fetching]
    assert ks == sorted(ks) and ks[-1] >= 1, seen
    assert "backtesting" in seen and seen.index("backtesting") > seen.index(fetching[-1])
    run = jobs.store.runs.get(record.id)
    assert run is not None and run.summary["fetch_s"] >= 1.0 and run.summary["backtest_s"] > 0
    assert {s.symbol for s in jobs.store.candles.list_series()} == {"AAPL.US", "TSLA.US"}
    limiter = limiter_from_settings(jobs.settings)
    assert {u.name: u.used for u in limiter.usage()} == {"minute": 2, "day": 10}
    limiter.close()


def test_two_jobs_needing_the_same_range_cause_one_fetch(jobs: JobEnv, fake: FakeEodhd) -> None:
    fake.delay_s = 1.0
    spec = BacktestSpec("sma_cross", ("AAPL.US",), "M5", "2021-01-04", "2023-06-30",
                        fetch="eodhd")  # fmt: skip
    first = jobs.client.submit(spec, owner="ana")
    second = jobs.client.submit(spec, owner="bo")
    states = wait_all(jobs.client, [first.id, second.id], 120, worker=jobs.worker)
    assert set(states.values()) == {JobState.SUCCEEDED}, states
    assert len(fake.requests()) == 2  # two 600-day chunks, asked once between both jobs


def test_a_sweep_fetches_once_for_all_its_chunks(jobs: JobEnv, fake: FakeEodhd) -> None:
    fake.delay_s = 0.3
    spec = SweepSpec("sma_cross", ("AAPL.US",), {"fast": [5, 10, 15, 20], "slow": [30, 60]},
                     "M5", START, END, fetch="eodhd", chunk_size=2)  # fmt: skip
    parent = jobs.client.submit(spec, owner="ana")
    assert parent.spec["chunks"] == 4
    done = jobs.client.wait(parent.id, timeout=180)
    assert done.state is JobState.SUCCEEDED, (done.error, jobs.worker.logs()[-2000:])
    assert len(fake.requests()) == 1  # one request for the one series, not one per chunk


def test_a_spent_quota_leaves_the_job_waiting_for_the_reset_not_failed(
    jobs: JobEnv, fake: FakeEodhd
) -> None:
    fake.daily_calls = 5  # one intraday request's worth
    spec = BacktestSpec("sma_cross", ("AAPL.US", "TSLA.US"), "M5", START, END, fetch="eodhd")
    record = jobs.client.submit(spec, owner="ana")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = jobs.client.status(record.id)
        if "waiting for the EODHD daily quota reset" in now.message:
            break
        assert now.state is not JobState.FAILED, now.error
        time.sleep(0.1)
    assert now.state is JobState.QUEUED and "UTC" in now.message, now
    time.sleep(2)
    assert jobs.client.status(record.id).state is JobState.QUEUED  # still waiting, not failed
    assert [s.status for s in fake.requests()] == [200, 402]
    # Midnight GMT: the quota is back. The delivery Celery holds for the reset comes; here the
    # test delivers it now (the countdown is hours) and the job goes on from where it stopped.
    fake.reset()
    limiter = limiter_from_settings(jobs.settings)
    limiter.reset()
    limiter.close()
    jobs.client._enqueue(jobs.client.status(record.id))
    done = jobs.client.wait(record.id, timeout=120)
    assert done.state is JobState.SUCCEEDED, (done.error, jobs.worker.logs()[-2000:])
    assert [s.symbol for s in fake.requests()] == ["TSLA.US"]  # AAPL.US was kept
    assert jobs.store.candles.series("TSLA.US", Timeframe.M5) is not None
