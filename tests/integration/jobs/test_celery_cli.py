"""Celery users' habits: ``celery -A traderunner.jobs.celery_app worker``, ``inspect active``
and ``control shutdown`` work on a real worker, with what ``traderunner worker`` has (the
settings, the queues, the advertiser that submitters check, the warm shutdown)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.jobenv import SYMBOLS, make_settings
from tests.jobhelpers import seed_candles, settings_env
from tests.redishelpers import RedisPair
from traderunner.domain.jobs import JobState
from traderunner.jobs import BacktestSpec, JobClient, NoopSpec
from traderunner.store import Store

pytestmark = pytest.mark.slow
NODE = "celerycli@localhost"


def _celery(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "traderunner.jobs.celery_app", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_celery_worker_inspect_and_control_shutdown(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = make_settings(redis_pair, tmp_path)
    store = Store.connect(settings.resolved_store_url)
    seed_candles(store, SYMBOLS, days=5)
    env = settings_env(settings)
    log = tmp_path / "celery-worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "traderunner.jobs.celery_app", "worker",
             "-c", "1", "-n", NODE, "--loglevel", "INFO"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = JobClient.open(settings, store=store)
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        # It advertises itself like `traderunner worker`, on both queues, interactive first.
        deadline = time.monotonic() + 30
        while not client.workers():
            assert time.monotonic() < deadline, "the celery worker never advertised itself"
            time.sleep(0.2)
        (info,) = client.workers()
        assert info.node == NODE and info.queues == ("interactive", "batch")
        assert "sma_cross" in info.strategies

        done = client.wait(client.submit(BacktestSpec("sma_cross", SYMBOLS, "M5")).id, 120)
        assert done.state is JobState.SUCCEEDED, done.error
        assert client.result(done.id) is not None

        slow = client.submit(NoopSpec(sleep_s=4))
        deadline = time.monotonic() + 60
        while client.status(slow.id).state is not JobState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        active = _celery(env, "inspect", "active", "-d", NODE, "--json")
        assert active.returncode == 0, active.stderr
        tasks = json.loads(active.stdout)[NODE]
        assert [t["name"] for t in tasks] == ["traderunner.run_job"]
        assert tasks[0]["args"] == [slow.id]

        # control shutdown is a warm shutdown: the running job finishes, then the worker exits.
        # (Celery's shutdown sends no reply, so the CLI itself says "No nodes replied".)
        _celery(env, "control", "shutdown", "-d", NODE, "--timeout", "2")
        assert worker.wait(60) == 0
        assert client.status(slow.id).state is JobState.SUCCEEDED
        assert "Warm shutdown" in log.read_text() or "shutdown" in log.read_text().lower()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        client.close()
        store.close()
