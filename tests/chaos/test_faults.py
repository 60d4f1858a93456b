"""Faults that must lose nothing: real worker processes, real Valkey servers, real kills.

Marked ``slow`` (still run in CI). Each test builds its own job system so a kill in one never
touches another.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.jobenv import SYMBOLS, job_env, make_settings
from tests.jobhelpers import WorkerProcess, settings_env, wait_all
from tests.redishelpers import RedisPair, start_pair
from traderunner.domain.jobs import JobState
from traderunner.domain.timeframe import Timeframe
from traderunner.engine import run_backtest
from traderunner.jobs import BacktestSpec, JobClient, NoopSpec
from traderunner.jobs.queueing import queued_job_ids
from traderunner.marketdata import load_candles
from traderunner.store import Store
from traderunner.store.schema import runs

pytestmark = pytest.mark.slow

N_JOBS = 60
HOLD_MS = 50  # per symbol: a job computes ~0.1 s, so a kill finds jobs mid-run


def _specs(n: int, log: Path, hold_ms: int = HOLD_MS) -> list[BacktestSpec]:
    # The counting strategy (tests/plugins) appends "{job} {symbol} {pid}" to ``log`` each time
    # it starts on a symbol: a job's lines for SYMBOLS[0] count its executions.
    return [
        BacktestSpec(
            "counting", SYMBOLS, "M5", params={"job": i, "hold_ms": hold_ms, "log": str(log)}
        )
        for i in range(n)
    ]


def _executions(log: Path, ids: list[str]) -> dict[str, int]:
    """Job id -> how many times it started executing, from the counting strategy's log."""
    counts = dict.fromkeys(ids, 0)
    if log.exists():
        for line in log.read_text().splitlines():
            job, symbol, _pid = line.split()
            if symbol == SYMBOLS[0]:
                counts[ids[int(job)]] += 1
    return counts


def _running(client: JobClient, worker_prefix: str = "") -> set[str]:
    """Jobs the store has RUNNING (on a worker whose name starts with ``worker_prefix``)."""
    return {
        r.id
        for r in client.store.jobs.list(states=[JobState.RUNNING], limit=None)
        if r.worker.startswith(worker_prefix)
    }


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _wait_computing(
    client: JobClient,
    worker: WorkerProcess,
    log: Path,
    ids: list[str],
    since: int,
    worker_prefix: str = "",
    timeout: float = 60,
) -> None:
    """Until a RUNNING job (on ``worker_prefix``'s worker) has started computing: its first
    line is among the log's lines after line ``since``. It then holds ~2 x HOLD_MS more."""
    deadline = time.monotonic() + timeout
    while True:
        started = {
            ids[int(job)]
            for job, symbol, _ in (line.split() for line in _lines(log)[since:])
            if symbol == SYMBOLS[0]
        }
        if started & _running(client, worker_prefix):
            return
        assert time.monotonic() < deadline, f"no job started computing:\n{worker.logs()[-3000:]}"
        worker.assert_running()
        time.sleep(0.01)


def _wait_running(client: JobClient, worker: WorkerProcess, timeout: float = 60) -> None:
    """Until a job is RUNNING."""
    deadline = time.monotonic() + timeout
    while not _running(client):
        assert time.monotonic() < deadline, f"no job started running:\n{worker.logs()[-3000:]}"
        worker.assert_running()
        time.sleep(0.02)


def _results(client: JobClient, ids: list[str]) -> dict[str, int]:
    """Job id -> the ``job`` parameter its stored result was computed with."""
    out = {}
    for job_id in ids:
        summary = client.result(job_id)
        assert summary is not None, job_id
        out[job_id] = int(summary["params"]["job"])
    return out


def _result_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar())


def _assert_executed_once_unless_hit(
    executions: dict[str, int], hits: list[set[str]], before: list[dict[str, int]]
) -> None:
    """The guarantee: a job runs once, and again only after a kill that hit it while it ran."""
    hit_count = {j: sum(j in h for h in hits) for j in executions}
    assert all(n >= 1 for n in executions.values()), executions
    once = {j: n for j, n in executions.items() if not hit_count[j] and n != 1}
    assert once == {}, f"jobs no kill hit ran more than once: {once}"
    over = {j: n for j, n in executions.items() if n > 1 + hit_count[j]}
    assert over == {}, f"jobs ran more often than kills hit them: {over}"
    # A hit job that had started computing (and left no result) had to run again after it.
    for hit, seen in zip(hits, before, strict=True):
        for job_id in hit:
            if seen[job_id]:
                assert executions[job_id] > seen[job_id], (job_id, executions[job_id])


def test_worker_sigkilled_five_times_loses_nothing(tmp_path: Path, redis_pair: RedisPair) -> None:
    log = tmp_path / "executions.log"
    with job_env(redis_pair, tmp_path, days=2) as env:
        ids = [env.client.submit(s).id for s in _specs(N_JOBS, log)]
        hits: list[set[str]] = []  # per kill: the jobs its worker was running
        before: list[dict[str, int]] = []  # per kill: executions of those that left no result
        for _ in range(5):
            node = env.worker.node_name + "/"  # its pool processes are "{node}/{pid}"
            # A job claimed by *this* worker, mid-computation (the dead worker's rows stay
            # RUNNING until the reconciler revives them, so RUNNING alone proves nothing).
            _wait_computing(env.client, env.worker, log, ids, len(_lines(log)), node)
            env.worker.kill()
            hit = _running(env.client, node)  # the dead worker's rows stay RUNNING
            hits.append(hit)
            counted = _executions(log, ids)
            before.append({j: counted[j] for j in hit if env.store.runs.get(j) is None})
            env.worker.start()
        assert sum(bool(h) for h in hits) == 5, hits  # every kill landed on a running job
        states = wait_all(env.client, ids, timeout=180, worker=env.worker)
        assert all(s is JobState.SUCCEEDED for s in states.values()), (
            {k: v for k, v in states.items() if v is not JobState.SUCCEEDED},
            env.worker.logs()[-3000:],
        )
        executions = _executions(log, ids)
        _assert_executed_once_unless_hit(executions, hits, before)
        assert sum(executions.values()) > N_JOBS  # the kills did cost re-executions
        # Every result saved once, under its own job, from that job's parameters.
        assert _results(env.client, ids) == {j: i for i, j in enumerate(ids)}
        assert _result_rows(env.store) == N_JOBS
        hit_any = set().union(*hits)
        assert all(env.client.status(j).attempts == 1 for j in ids if j not in hit_any)


def test_durable_redis_sigkilled_and_restarted_from_aof(tmp_path: Path) -> None:
    pair = start_pair(tmp_path / "valkey")  # its own server: this test kills it
    log = tmp_path / "executions.log"
    try:
        with job_env(pair, tmp_path / "sys", days=2) as env:
            # Longer jobs: the worker is idle while Redis is down, and the third kill must
            # still find work.
            ids = [env.client.submit(s).id for s in _specs(N_JOBS, log, hold_ms=2 * HOLD_MS)]
            hits: list[set[str]] = []
            # Three kills: the worker's reconnect path (restoring unacked messages on a dead
            # connection) is racy, and Celery 5.7.0 exited there about one kill in three.
            for _ in range(3):
                since = len(_lines(log))
                pid = pair.durable.status().pid
                _wait_computing(env.client, env.worker, log, ids, since, timeout=120)
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                hits.append(_running(env.client))  # the store still answers
                time.sleep(1.0)
                pair.durable.start()  # replays the AOF: up to the last second may be lost
            assert sum(bool(h) for h in hits) == 3, hits  # every kill landed mid-run
            states = wait_all(env.client, ids, timeout=240, worker=env.worker)
            assert all(s is JobState.SUCCEEDED for s in states.values()), (
                sum(s is JobState.SUCCEEDED for s in states.values()),
                env.worker.logs()[-3000:],
            )
            assert "Restoring" in env.worker.log_path.read_text()  # the racy path did run
            # A job that ran while Redis died may run again (its claim can expire during the
            # outage); no other job may.
            executions = _executions(log, ids)
            hit_count = {j: sum(j in h for h in hits) for j in ids}
            assert all(n >= 1 for n in executions.values())
            assert {j: n for j, n in executions.items() if n > 1 + hit_count[j]} == {}
            assert _results(env.client, ids) == {j: i for i, j in enumerate(ids)}
            assert _result_rows(env.store) == N_JOBS
    finally:
        pair.durable.stop()
        pair.cache.stop()


def test_warm_shutdown_finishes_jobs_and_none_runs_twice(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    log = tmp_path / "executions.log"
    with job_env(redis_pair, tmp_path, days=2) as env:
        ids = [env.client.submit(s).id for s in _specs(30, log)]
        _wait_running(env.client, env.worker)
        in_hand = _running(env.client)
        code = env.worker.terminate(timeout=120)
        assert code == 0
        assert "restarting in place" not in env.worker.logs()  # the watchdog stood down
        partly = wait_all(env.client, ids, timeout=0.5)
        assert in_hand and all(partly[j] is JobState.SUCCEEDED for j in in_hand)  # finished
        assert not any(s is JobState.RUNNING for s in partly.values())
        assert any(s is JobState.QUEUED for s in partly.values())  # ... and took no more
        env.worker.start()
        states = wait_all(env.client, ids, timeout=120, worker=env.worker)
        assert all(s is JobState.SUCCEEDED for s in states.values())
        assert _executions(log, ids) == dict.fromkeys(ids, 1)  # none ran twice
        assert all(env.client.status(i).attempts == 1 for i in ids)
        assert _result_rows(env.store) == 30


def test_cold_shutdown_exits_non_zero_and_its_job_runs_after_restart(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    # A supervisor (systemd Restart=on-failure) restarts only a worker that exits non-zero;
    # Celery's worker_main alone would exit 0 here.
    with job_env(redis_pair, tmp_path) as env:
        job = env.client.submit(NoopSpec(sleep_s=3.0))
        deadline = time.monotonic() + 30
        while env.client.status(job.id).state is not JobState.RUNNING:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        assert env.worker.proc is not None
        env.worker.proc.send_signal(signal.SIGQUIT)  # Celery's cold shutdown
        code = env.worker.proc.wait(timeout=60)
        assert code != 0, env.worker.logs()[-3000:]
        env.worker.start()
        done = env.client.wait(job.id, timeout=120)
        assert done.state is JobState.SUCCEEDED, env.worker.logs()[-3000:]


def test_strategy_that_raises_fails_its_job_and_the_worker_lives_on(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    with job_env(redis_pair, tmp_path) as env:
        bad = env.client.submit(BacktestSpec("exploding", SYMBOLS, "M5", params={"bar": 7}))
        done = env.client.wait(bad.id, timeout=60)
        assert done.state is JobState.FAILED
        assert "exploding strategy: division by zero at bar 7" in done.error
        assert env.worker.proc is not None and env.worker.proc.poll() is None
        good = env.client.submit(BacktestSpec("sma_cross", SYMBOLS, "M5"))
        assert env.client.wait(good.id, timeout=60).state is JobState.SUCCEEDED


def test_pickle_payload_in_a_queue_is_rejected_and_runs_no_code(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    with job_env(redis_pair, tmp_path) as env:
        body = pickle.dumps(((str(uuid.uuid4()),), {}, {}))
        evil = pickle.dumps(Exploit())
        task_id = uuid.uuid4().hex
        message = {
            "body": base64.b64encode(evil + body).decode(),
            "content-encoding": "binary",
            "content-type": "application/x-python-serialize",
            "headers": {"lang": "py", "task": "traderunner.run_job", "id": task_id},
            "properties": {
                "correlation_id": task_id,
                "delivery_info": {"exchange": "", "routing_key": "interactive"},
                "delivery_mode": 2,
                "delivery_tag": uuid.uuid4().hex,
                "body_encoding": "base64",
                "priority": 0,
            },
        }
        queue_key = env.client.keys.celery_queue("interactive")
        env.client.redis.lpush(queue_key, json.dumps(message))
        follow_up = env.client.submit(NoopSpec())
        assert env.client.wait(follow_up.id, timeout=30).state is JobState.SUCCEEDED
        # The evil message was consumed (a copy of the follow-up that the reconciler may have
        # enqueued while the worker held it can still wait there: it is dropped on delivery) ...
        assert task_id not in queued_job_ids(env.client.redis, env.client.keys)
        assert not marker.exists()  # ... and never unpickled
        logs = env.worker.logs()
        assert "ContentDisallowed" in logs or "disallowed" in logs.lower()


def test_a_worker_whose_consumer_stops_restarts_itself(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    # Celery's own remote control makes the consumer stop taking messages: from outside that
    # is what a consumer stuck after a broker reconnect looks like.
    from traderunner.jobs.app import make_celery

    with job_env(redis_pair, tmp_path) as env:
        app = make_celery(env.settings)
        node = env.worker.node_name
        for queue in ("interactive", "batch"):
            replies = app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
            assert replies, f"{node} did not answer cancel_consumer"
        assert env.worker.proc is not None
        pid = env.worker.proc.pid
        job = env.client.submit(NoopSpec())
        time.sleep(2.0)
        assert env.client.status(job.id).state is JobState.QUEUED  # nobody takes it now
        done = env.client.wait(job.id, timeout=90)
        assert done.state is JobState.SUCCEEDED, env.worker.logs()[-3000:]
        assert "restarting in place" in env.worker.logs()
        assert env.worker.proc.poll() is None and env.worker.proc.pid == pid  # same process
        app.close()


CLIENT_SCRIPT = """
import json, sys
from traderunner.config import load_settings
from traderunner.jobs import JobClient, NoopSpec, BacktestSpec
with JobClient.open(load_settings()) as c:
    ids = [c.submit(NoopSpec(sleep_s=0.2), owner="dash").id for _ in range(5)]
    ids.append(c.submit(BacktestSpec("sma_cross", ("AAA",), "M5"), owner="dash").id)
    print(json.dumps(ids))
"""


def test_client_process_restart_finds_every_job_again(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    settings = make_settings(redis_pair, tmp_path)
    store = Store.connect(settings.resolved_store_url)
    from tests.jobhelpers import seed_candles

    seed_candles(store, ("AAA",))
    worker = WorkerProcess(settings, tmp_path / "logs").start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CLIENT_SCRIPT],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        ids = json.loads(out.stdout.strip().splitlines()[-1])
        # the submitting process is gone; a new client (a restarted dashboard) sees everything
        with JobClient.open(settings) as fresh:
            listed = {r.id for r in fresh.list(owner="dash")}
            assert listed == set(ids)
            states = wait_all(fresh, ids, timeout=60, worker=worker)
            assert all(s is JobState.SUCCEEDED for s in states.values())
            # The backtest's result is the engine's own on the same candles.
            candles = load_candles(store, ["AAA"], Timeframe.M5, None, None)
            direct = run_backtest("sma_cross", candles)
            summary = fresh.result(ids[-1])
            assert summary is not None and summary["trades"] == direct.n_trades > 0
            assert summary["metrics"]["total_return"] == pytest.approx(
                direct.metrics["total_return"]
            )
    finally:
        worker.stop()
        store.close()
