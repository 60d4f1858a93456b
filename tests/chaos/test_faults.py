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
from traderunner.jobs import BacktestSpec, JobClient, NoopSpec
from traderunner.store import Store
from traderunner.store.schema import backtest_results

pytestmark = pytest.mark.slow

N_JOBS = 200


def _specs(n: int) -> list[BacktestSpec]:
    # Distinct parameters, so every result is its own.
    return [
        BacktestSpec("sma_cross", SYMBOLS, "M5", params={"fast": 2 + i % 20, "slow": 30 + i})
        for i in range(n)
    ]


def _wait_until_running(
    client: JobClient, ids: list[str], timeout: float = 60, worker: WorkerProcess | None = None
) -> None:
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.id in wanted for r in client.store.jobs.list(states=[JobState.RUNNING])):
            return
        if worker is not None:
            worker.assert_running()
        time.sleep(0.05)
    raise AssertionError("no job started running within the timeout")


def _result_rows(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(backtest_results.c.id, sa.func.count()).group_by(backtest_results.c.id)
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def test_worker_sigkilled_five_times_loses_nothing(tmp_path: Path, redis_pair: RedisPair) -> None:
    with job_env(redis_pair, tmp_path, days=20) as env:
        ids = [env.client.submit(s).id for s in _specs(N_JOBS)]
        for _ in range(5):
            _wait_until_running(env.client, ids, worker=env.worker)  # the kill lands mid-run
            time.sleep(0.3)
            env.worker.kill()
            env.worker.start()
        states = wait_all(env.client, ids, timeout=180, worker=env.worker)
        assert all(s is JobState.SUCCEEDED for s in states.values()), (
            {k: v for k, v in states.items() if v is not JobState.SUCCEEDED},
            env.worker.logs()[-3000:],
        )
        rows = _result_rows(env.store)
        assert set(rows) == set(ids)
        assert all(count == 1 for count in rows.values())
        attempts = [env.client.status(i).attempts for i in ids]
        # the kills landed mid-run: some jobs needed a second attempt
        assert max(attempts) >= 2, attempts


def test_durable_redis_sigkilled_and_restarted_from_aof(tmp_path: Path) -> None:
    pair = start_pair(tmp_path / "valkey")  # its own server: this test kills it
    try:
        with job_env(pair, tmp_path / "sys", days=20) as env:
            ids = [env.client.submit(s).id for s in _specs(N_JOBS)]
            # Three kills: the worker's reconnect path (restoring unacked messages on a dead
            # connection) is racy, and Celery 5.7.0 exited there about one kill in three.
            for kill in range(3):
                _wait_until_running(env.client, ids, timeout=120, worker=env.worker)
                time.sleep(1.0)
                before = wait_all(env.client, ids, timeout=0, worker=env.worker)
                # the kill lands mid-run: many jobs still queued or running
                assert sum(s is JobState.SUCCEEDED for s in before.values()) < N_JOBS
                if kill == 0:
                    assert any(s is JobState.SUCCEEDED for s in before.values())
                pid = pair.durable.status().pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                time.sleep(1.0)
                pair.durable.start()  # replays the AOF: up to the last second may be lost
            states = wait_all(env.client, ids, timeout=240, worker=env.worker)
            assert all(s is JobState.SUCCEEDED for s in states.values()), (
                sum(s is JobState.SUCCEEDED for s in states.values()),
                env.worker.logs()[-3000:],
            )
            assert "Restoring" in env.worker.log_path.read_text()  # the racy path did run
            rows = _result_rows(env.store)
            assert set(rows) == set(ids)
            assert all(count == 1 for count in rows.values())
    finally:
        pair.durable.stop()
        pair.cache.stop()


def test_warm_shutdown_finishes_jobs_and_none_runs_twice(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    with job_env(redis_pair, tmp_path, days=20) as env:
        ids = [env.client.submit(s).id for s in _specs(60)]
        _wait_until_running(env.client, ids, worker=env.worker)
        time.sleep(0.5)
        code = env.worker.terminate(timeout=120)
        assert code == 0
        assert "restarting in place" not in env.worker.logs()  # the watchdog stood down
        partly = wait_all(env.client, ids, timeout=0.5)
        assert any(s is JobState.SUCCEEDED for s in partly.values())
        assert not any(s is JobState.RUNNING for s in partly.values())  # in-hand jobs finished
        env.worker.start()
        states = wait_all(env.client, ids, timeout=120, worker=env.worker)
        assert all(s is JobState.SUCCEEDED for s in states.values())
        assert all(env.client.status(i).attempts == 1 for i in ids)  # none ran twice
        assert all(c == 1 for c in _result_rows(env.store).values())


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
        assert env.client.redis.llen(queue_key) == 0  # the evil message was consumed ...
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
            assert fresh.result(ids[-1])["trades"] >= 0
    finally:
        worker.stop()
        store.close()
