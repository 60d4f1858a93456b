"""Jobs end to end: real Valkey, a real Celery worker process, a real SQLite store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.jobenv import SYMBOLS, JobEnv, job_env
from tests.redishelpers import RedisPair
from traderunner.domain.jobs import JobKind, JobState, Queue
from traderunner.domain.timeframe import Timeframe
from traderunner.engine import run_backtest, run_sweep
from traderunner.errors import PermissionDeniedError, UserInputError
from traderunner.jobs import BacktestSpec, NoopSpec, SweepSpec
from traderunner.marketdata import load_candles
from traderunner.redisdb.keys import owners


@pytest.fixture(scope="module")
def env(redis_pair: RedisPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobEnv]:
    with job_env(redis_pair, tmp_path_factory.mktemp("jobs")) as e:
        yield e


def test_backtest_job_matches_the_engine_in_process(env: JobEnv) -> None:
    spec = BacktestSpec(
        "sma_cross",
        SYMBOLS,
        "M5",
        params={"fast": 5, "slow": 20},
        options={"fees_bps": 1.0, "units": "whole", "lot_size": 10},
        name="run one",
    )
    record = env.client.submit(spec, owner="alice")
    assert record.state is JobState.QUEUED and record.queue is Queue.INTERACTIVE
    done = env.client.wait(record.id, timeout=60)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempts == 1 and done.worker and done.started_at and done.finished_at
    summary = env.client.result(record.id)
    assert summary is not None
    candles = load_candles(env.store, list(SYMBOLS), Timeframe.M5, None, None)
    direct = run_backtest(
        "sma_cross", candles, {"fast": 5, "slow": 20}, fees_bps=1.0, units="whole", lot_size=10
    )
    assert summary["trades"] == direct.n_trades > 0
    assert summary["closed_trades"] == direct.n_closed_trades
    assert all(t["size"] % 10 == 0 for t in summary["trade_list"])  # whole lots of 10
    for name in ("total_return", "sharpe", "max_drawdown", "win_rate"):
        assert summary["metrics"][name] == pytest.approx(direct.metrics[name], nan_ok=True)
    run = env.store.runs.get(record.id)
    assert run is not None and (run.name, run.owner, run.origin.value) == (
        "run one",
        "alice",
        "job",
    )
    assert run.options["fees_bps"] == 1.0 and set(run.tables) >= {"equity", "price:AAA"}
    assert summary["trade_list"] == json.loads(json.dumps(direct.to_dict()["trade_list"]))


def test_sweep_fans_out_and_assembles_the_same_table(env: JobEnv) -> None:
    grid = {"fast": [3, 5, 8, 13], "slow": [10, 20, 30]}
    record = env.client.submit(SweepSpec("sma_cross", ("AAA",), grid, "M5", chunk_size=3))
    assert record.kind is JobKind.SWEEP and record.queue is Queue.BATCH
    children = env.client.children(record.id)
    assert len(children) == 4 and all(c.parent == record.id for c in children)
    done = env.client.wait(record.id, timeout=90)
    assert done.state is JobState.SUCCEEDED, done.error
    table = env.client.result(record.id)
    assert table is not None and table["chunks"] == 4
    # The chunks' rows were folded into the sweep's run and dropped with it.
    assert env.store.jobs.results([c.id for c in children]) == {}
    run = env.store.runs.get(record.id)
    assert run is not None and run.kind.value == "sweep" and run.owner == ""
    candles = load_candles(env.store, ["AAA"], Timeframe.M5, None, None)
    direct = run_sweep("sma_cross", candles, grid)
    by_params = {(r["fast"], r["slow"]): r for r in table["rows"]}
    valid = sum(1 for f in grid["fast"] for s in grid["slow"] if f < s)
    assert len(by_params) == len(direct.rows) == valid
    assert table["skipped"] == direct.skipped == len(grid["fast"]) * len(grid["slow"]) - valid
    for row in direct.rows:
        got = by_params[(row["fast"], row["slow"])]
        assert got["total_return"] == pytest.approx(row["total_return"])
        assert got["trades"] == row["trades"]


def test_cancel_running_and_queued(env: JobEnv) -> None:
    blockers = [env.client.submit(NoopSpec(sleep_s=30)) for _ in range(2)]
    _wait_state(env, blockers, JobState.RUNNING)
    waiting = env.client.submit(NoopSpec())
    cancelled = env.client.cancel(waiting.id, actor="tester")
    assert cancelled.state is JobState.CANCELLED
    t0 = time.monotonic()
    for b in blockers:
        env.client.cancel(b.id, actor="tester")
    for b in blockers:
        assert env.client.wait(b.id, timeout=10).state is JobState.CANCELLED
    assert time.monotonic() - t0 < 10
    time.sleep(1.0)  # the queued one's message is delivered and dropped
    final = env.client.status(waiting.id)
    assert final.state is JobState.CANCELLED and final.attempts == 0 and final.started_at is None


def test_interactive_jobs_go_before_batch(env: JobEnv) -> None:
    # Staggered, so worker slots free one at a time and the first free one decides.
    blockers = [env.client.submit(NoopSpec(sleep_s=s)) for s in (1.5, 3.0)]
    _wait_state(env, blockers, JobState.RUNNING)
    batch = [env.client.submit(NoopSpec(sleep_s=0.2), queue="batch") for _ in range(4)]
    urgent = env.client.submit(NoopSpec(), queue="interactive")
    ids = [*batch, urgent]
    for r in ids:
        assert env.client.wait(r.id, timeout=30).state is JobState.SUCCEEDED
    started = {r.id: env.client.status(r.id).started_at for r in ids}
    assert started[urgent.id] < min(started[b.id] for b in batch)


def test_each_queue_is_bound_only_to_its_own_exchange_and_key(env: JobEnv) -> None:
    # What the worker declared in Redis: kombu's set per exchange of "key:pattern:queue"
    # (sep ":" from the transport options).
    for queue in Queue:
        members = env.client.redis.smembers(env.client.keys.kombu_binding(queue.value))
        bindings = sorted(
            (m.decode() if isinstance(m, bytes) else str(m)).split(":") for m in members
        )
        assert bindings == [[queue.value, "", queue.value]], (queue, bindings)


def test_follow_reports_progress_until_done(env: JobEnv) -> None:
    record = env.client.submit(BacktestSpec("ema_cross", SYMBOLS, "M5"))
    seen = list(env.client.follow(record.id, timeout=60, poll_s=0.1))
    assert seen[-1].state is JobState.SUCCEEDED
    states = [s.state for s in seen]
    assert states[0] in (JobState.QUEUED, JobState.RUNNING)
    assert np.all(np.diff([s.progress for s in seen if s.state is JobState.RUNNING]) >= 0)


def test_list_filters_and_retry(env: JobEnv) -> None:
    failing = env.client.submit(NoopSpec(fail="planned failure"), owner="bob")
    assert env.client.wait(failing.id, timeout=30).state is JobState.FAILED
    assert env.client.status(failing.id).error == "planned failure"
    assert env.client.status(failing.id).message == "planned failure"  # its message is its error
    mine = env.client.list(owner="bob").items
    assert [r.id for r in mine] == [failing.id]
    assert failing.id in {r.id for r in env.client.list(states=[JobState.FAILED]).items}
    sweep = env.client.submit(SweepSpec("sma_cross", ("AAA",), {"fast": [3], "slow": [10]}))
    sweeps = env.client.list(kinds=[JobKind.SWEEP]).items
    assert sweep.id in {r.id for r in sweeps}
    assert {r.kind for r in sweeps} == {JobKind.SWEEP}  # not the noop, not the chunks
    assert env.client.wait(sweep.id, timeout=30).state is JobState.SUCCEEDED
    retried = env.client.retry(failing.id, actor="bob")
    assert retried.state in (JobState.QUEUED, JobState.RUNNING, JobState.FAILED)
    again = env.client.wait(failing.id, timeout=30)
    assert again.state is JobState.FAILED and again.attempts == 1  # attempts reset by retry


def _wait_state(env: JobEnv, records: list, state: JobState, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(env.client.status(r.id).state is state for r in records):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs not {state} in {timeout}s:\n{env.worker.logs()[-2000:]}")


def test_list_filters_by_what_ran_and_pages_with_a_total(env: JobEnv) -> None:
    since = datetime.now(UTC)
    ran = [
        env.client.submit(BacktestSpec("sma_cross", ("AAA",), "M5"), owner="carol"),
        env.client.submit(BacktestSpec("ema_cross", ("AAA", "BBB"), "M5"), owner="carol"),
        env.client.submit(BacktestSpec("sma_cross", ("BBB",), "M5"), owner="carol"),
        env.client.submit(SweepSpec("sma_cross", ("BBB",), {"fast": [3, 5]}, "M5"), owner="dave"),
    ]
    for r in ran:
        assert env.client.wait(r.id, timeout=60).state is JobState.SUCCEEDED
    ids = [r.id for r in ran]

    def listed(**filters: object) -> list[str]:
        return [r.id for r in env.client.list(created_from=since, **filters).items]

    assert listed() == ids[::-1]  # newest first; sweep chunks only under their sweep
    assert listed(owner="carol") == ids[2::-1]
    assert listed(strategy="ema_cross") == [ids[1]]
    assert listed(symbol="BBB") == [ids[3], ids[2], ids[1]]
    assert listed(symbol="BB") == []  # a whole symbol, not a part of one
    assert listed(symbol="AAA", strategy="sma_cross") == [ids[0]]
    assert listed(kinds=[JobKind.SWEEP], owner="dave") == [ids[3]]
    assert listed(states=[JobState.FAILED]) == []
    assert env.client.list(created_before=since, owner="carol").total == 0
    first = env.client.list(created_from=since, limit=3)
    second = env.client.list(created_from=since, limit=3, offset=3)
    assert first.total == second.total == 4 and first.more and not second.more
    assert [r.id for r in [*first.items, *second.items]] == ids[::-1]
    assert env.client.resolve(ids[3][:8]) == ids[3]  # the sweep, not one of its chunks
    assert env.client.resolve(f"{ids[3]}-0001") == f"{ids[3]}-0001"  # a chunk by its own id
    with pytest.raises(UserInputError, match="ambiguous"):
        env.client.resolve(f"{ids[3]}-000")


def test_list_reads_the_live_state_of_a_page_in_one_round_trip(env: JobEnv) -> None:
    blockers = [env.client.submit(NoopSpec(sleep_s=30), owner="lena") for _ in range(2)]
    _wait_state(env, blockers, JobState.RUNNING)
    queued = [env.client.submit(NoopSpec(), owner="lena") for _ in range(3)]
    env.client.board.progress(blockers[0].id, 0.5, "halfway")  # as a worker reports it
    calls = {"pipelines": 0, "single": 0}
    redis_client = env.client.redis
    pipeline, execute = redis_client.pipeline, redis_client.execute_command

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        calls["pipelines"] += 1
        return pipeline(*args, **kwargs)

    def counting_execute(*args: object, **kwargs: object) -> object:
        calls["single"] += 1
        return execute(*args, **kwargs)

    try:
        redis_client.pipeline = counting_pipeline  # type: ignore[method-assign]
        redis_client.execute_command = counting_execute  # type: ignore[method-assign]
        page = env.client.list(owner="lena", states=[JobState.RUNNING, JobState.QUEUED])
    finally:
        redis_client.pipeline = pipeline  # type: ignore[method-assign]
        redis_client.execute_command = execute  # type: ignore[method-assign]
        for r in [*blockers, *queued]:
            env.client.cancel(r.id, actor="lena")
    assert calls == {"pipelines": 1, "single": 0}
    assert {r.id for r in page.items} >= {b.id for b in blockers}
    live = next(r for r in page.items if r.id == blockers[0].id)
    assert (live.progress, live.message) == (0.5, "halfway")


def test_another_users_job_is_refused_unless_the_actor_is_an_admin(env: JobEnv) -> None:
    job = env.client.submit(NoopSpec(sleep_s=30), owner="erin")
    with pytest.raises(PermissionDeniedError, match=r"belongs to 'erin', not to 'mallory'"):
        env.client.cancel(job.id, actor="mallory")
    assert not env.client.status(job.id).state.terminal
    assert not env.client.board.cancel_requested(job.id)  # nothing was flagged either
    assert env.client.cancel(job.id, actor="mallory", is_admin=True).state in (
        JobState.CANCELLED,
        JobState.RUNNING,  # a running job stops at its next check
    )
    assert env.client.wait(job.id, timeout=10).state is JobState.CANCELLED
    with pytest.raises(PermissionDeniedError):
        env.client.retry(job.id, actor="mallory")
    assert env.client.status(job.id).state is JobState.CANCELLED
    again = env.client.retry(job.id, actor="erin")
    assert again.state in (JobState.QUEUED, JobState.RUNNING)
    env.client.cancel(job.id, actor="erin")
    assert env.client.wait(job.id, timeout=10).state is JobState.CANCELLED


def test_a_cancelled_sweep_says_how_far_it_got(env: JobEnv) -> None:
    blockers = [env.client.submit(NoopSpec(sleep_s=30)) for _ in range(2)]
    _wait_state(env, blockers, JobState.RUNNING)  # both worker slots busy: the chunks wait
    grid = {"fast": [3, 5, 8], "slow": [20, 30]}
    sweep = env.client.submit(SweepSpec("sma_cross", ("AAA",), grid, "M5", chunk_size=1))
    chunks = env.client.children(sweep.id)
    assert len(chunks) == 6
    for chunk in chunks[:2]:
        env.client.cancel(chunk.id, actor="")
    for b in blockers:
        env.client.cancel(b.id, actor="")
    done = env.client.wait(sweep.id, timeout=60)
    assert done.state is JobState.CANCELLED
    assert done.message == "cancelled after 4 of 6 chunks (4 of 6 combinations)"
    assert env.client.result(sweep.id) is None  # a cancelled sweep saves no run


def test_nothing_here_touches_the_users_home(
    env: JobEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The job system under test keeps its store and data under pytest's temporary folder, and
    # the worker process was handed exactly that (its jobs ran against this store).
    base = tmp_path_factory.getbasetemp()
    assert env.settings.data_dir.is_relative_to(base)
    store_file = Path(env.settings.resolved_store_url.removeprefix("sqlite:///"))
    assert store_file.is_relative_to(base) and store_file.is_file()
    job = env.client.submit(NoopSpec())  # the worker finds it only in this very store
    assert env.client.wait(job.id, timeout=30).state is JobState.SUCCEEDED


def test_every_key_the_running_system_holds_is_in_the_schema(env: JobEnv) -> None:
    # Real work on both servers: a backtest (job hashes, the series cache, cache stats), a
    # sweep (chunks), a cancel (its flag), a live worker (its advertisement, kombu's keys).
    done = env.client.submit(BacktestSpec("sma_cross", SYMBOLS, "M5"))
    sweep = env.client.submit(SweepSpec("sma_cross", ("AAA",), {"fast": [3, 5], "slow": [20]}))
    blocker = env.client.submit(NoopSpec(sleep_s=30))
    _wait_state(env, [blocker], JobState.RUNNING)
    env.client.cancel(blocker.id, actor="")
    for job in (done, sweep, blocker):
        assert env.client.wait(job.id, timeout=60).state.terminal
    prefix = env.settings.redis_prefix
    seen: set[str] = set()
    for url in (env.settings.redis_url, env.settings.cache_url):
        server = redis.Redis.from_url(url, decode_responses=True)
        try:
            for key in server.scan_iter(match=f"{prefix}*", count=1000):
                matching = owners(key, prefix)
                assert len(matching) == 1, (key, matching)  # undocumented or ambiguous
                seen.add(matching[0])
        finally:
            server.close()
    expected = {"job", "job_cancel", "workers", "worker", "candle_series", "cache_stats"}
    assert expected | {"kombu_binding"} <= seen, seen
