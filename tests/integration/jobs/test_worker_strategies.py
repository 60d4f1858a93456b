"""Submit knows which strategies the live workers have: real worker processes, started with and
without the plugin folder, advertise what they loaded; the client refuses, queues or warns."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.clihelpers import run_process
from tests.jobenv import PLUGINS, SYMBOLS, make_settings
from tests.jobhelpers import WorkerProcess, seed_candles, settings_env
from tests.redishelpers import RedisPair
from traderunner.domain.jobs import JobState
from traderunner.errors import StrategyUnavailableError
from traderunner.jobs import BacktestSpec, JobClient
from traderunner.jobs.queueing import queued_job_ids
from traderunner.store import Store


def _wait_workers(client: JobClient, nodes: set[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while {w.node for w in client.workers()} != nodes:
        assert time.monotonic() < deadline, ({w.node for w in client.workers()}, nodes)
        time.sleep(0.1)


def test_submit_checks_the_strategies_of_the_live_workers(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    settings = make_settings(redis_pair, tmp_path)  # this machine has the plugin folder
    store = Store.connect(settings.resolved_store_url)
    seed_candles(store, SYMBOLS, days=2)
    exploding = BacktestSpec("exploding", SYMBOLS, "M5")
    workers: list[WorkerProcess] = []
    try:
        with JobClient.open(settings, store=store) as client:
            # No worker: the job waits durably, and the client can say why nothing runs it.
            check = client.strategy_check("exploding")
            assert check is not None and check.workers == () and not check.refused
            assert check.notes()[0].startswith("no worker is running")
            waiting = client.submit(exploding)

            # A worker started without the plugin folder (built-ins only), on the interactive
            # queue only.
            bare_settings = settings.model_copy(update={"strategy_path": ""})
            bare = WorkerProcess(
                bare_settings, tmp_path / "bare", concurrency=1, queues="interactive", node="bare"
            )
            workers.append(bare.start())
            _wait_workers(client, {bare.node_name})
            # The job queued before any worker ran is taken by one that lacks the strategy:
            # it fails, saying what to do.
            lacked = client.wait(waiting.id, timeout=60)
            assert lacked.state is JobState.FAILED
            assert f"worker {bare.node_name}/" in lacked.error
            assert "does not have strategy 'exploding'" in lacked.error
            assert f"traderunner jobs retry {waiting.id}" in lacked.error
            jobs_before = len(store.jobs.list(limit=None))
            with pytest.raises(StrategyUnavailableError) as refused:
                client.submit(exploding)
            message = str(refused.value)
            assert "no running worker has strategy 'exploding'" in message
            assert f"TRADERUNNER_STRATEGY_PATH={PLUGINS} traderunner worker" in message
            assert "\n" not in message
            assert len(store.jobs.list(limit=None)) == jobs_before  # nothing written ...
            # ... or queued (the reconciler may still hold a harmless copy of the failed one)
            assert queued_job_ids(client.redis, client.keys) <= {waiting.id}
            ran = run_process(
                ["backtest", "exploding", "--symbols", "AAA", "--submit"], settings_env(settings)
            )
            assert ran.code == 2 and ran.err_lines == [f"error: {message}"], ran.err
            builtin = client.submit(BacktestSpec("sma_cross", SYMBOLS, "M5"))
            assert client.strategy_check("sma_cross").notes() == []  # in step: nothing to say
            assert client.wait(builtin.id, timeout=60).state is JobState.SUCCEEDED

            # A second worker, on the batch queue too, with its own (edited) copy of the plugin.
            copy = tmp_path / "their-plugins"
            shutil.copytree(PLUGINS, copy)
            with (copy / "exploding.py").open("a") as fh:
                fh.write("# edited on the worker machine\n")
            other_settings = settings.model_copy(update={"strategy_path": str(copy)})
            other = WorkerProcess(other_settings, tmp_path / "other", concurrency=1, node="other")
            workers.append(other.start())
            _wait_workers(client, {bare.node_name, other.node_name})
            check = client.strategy_check("exploding")
            assert check is not None and check.having == (other.node_name,)
            assert set(check.other_versions) == {other.node_name}
            assert check.other_versions[other.node_name] != check.version
            notes = check.notes()
            assert len(notes) == 2
            assert f"1 of 2 live workers lack strategy 'exploding' ({bare.node_name})" in notes[0]
            assert "differs between this machine" in notes[1]
            # The bare worker serves only the interactive queue: the batch job is the other's,
            # and it fails with the plugin's own error, so that worker really loaded it.
            job = client.submit(exploding, queue="batch")
            done = client.wait(job.id, timeout=60)
            assert done.state is JobState.FAILED
            assert "exploding strategy: division by zero at bar 3" in done.error
            bare.stop()
            _wait_workers(client, {other.node_name})  # a warm shutdown withdrew the bare one
    finally:
        for worker in workers:
            worker.stop()
        store.close()
