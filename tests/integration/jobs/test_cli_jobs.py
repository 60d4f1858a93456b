"""The job commands of the CLI, run as real processes against a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clihelpers import Ran, run_process
from tests.jobenv import JobEnv, job_env
from tests.jobhelpers import settings_env
from tests.redishelpers import RedisPair, embedded_env
from traderunner.domain.timeframe import Timeframe
from traderunner.engine import run_backtest
from traderunner.jobs.queueing import queue_lengths
from traderunner.marketdata import load_candles


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> Ran:
    return run_process(args, env, timeout=timeout)


@pytest.fixture(scope="module")
def env(redis_pair: RedisPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobEnv]:
    with job_env(redis_pair, tmp_path_factory.mktemp("clijobs")) as e:
        yield e


def test_backtest_submit_follows_to_the_result(env: JobEnv) -> None:
    proc = run_cli(
        settings_env(env.settings),
        "backtest",
        "sma_cross",
        "--symbols",
        "AAA,BBB",
        "--param",
        "fast=5",
        "--param",
        "slow=30",
        "--submit",
        "--json",
    )
    assert proc.code == 0, proc.err
    payload = json.loads(proc.out)
    assert payload["state"] == "succeeded"
    assert payload["kind"] == "backtest"
    # What the worker computed is what the engine computes here on the same candles.
    candles = load_candles(env.store, ["AAA", "BBB"], Timeframe.M5, None, None)
    direct = run_backtest("sma_cross", candles, {"fast": 5, "slow": 30})
    assert payload["result"]["trades"] == direct.n_trades > 0
    assert payload["result"]["metrics"]["total_return"] == pytest.approx(
        direct.metrics["total_return"]
    )
    assert payload["spec"]["params"] == {"fast": 5, "slow": 30}
    listed = json.loads(run_cli(settings_env(env.settings), "jobs", "list", "--json").out)
    assert payload["id"] in [j["id"] for j in listed["jobs"]]
    shown = run_cli(settings_env(env.settings), "jobs", "show", payload["id"], "--json")
    assert json.loads(shown.out)["result"]["metrics"] == payload["result"]["metrics"]


def test_sweep_submit_without_follow_then_follow(env: JobEnv) -> None:
    e = settings_env(env.settings)
    proc = run_cli(
        e,
        "sweep",
        "sma_cross",
        "--symbols",
        "AAA",
        "--grid",
        "fast=5:15:5",
        "--grid",
        "slow=20:40:10",
        "--submit",
        "--no-follow",
        "--json",
    )
    assert proc.code == 0, proc.err
    job = json.loads(proc.out)
    assert job["kind"] == "sweep" and job["queue"] == "batch"
    followed = run_cli(e, "jobs", "follow", job["id"], "--json")
    assert json.loads(followed.out)["state"] == "succeeded"
    shown = json.loads(run_cli(e, "jobs", "show", job["id"], "--json").out)
    assert shown["result"]["combinations"] == 9
    assert sum(shown["chunks"].values()) == shown["spec"]["chunks"]


def test_bad_submit_exits_2_and_enqueues_nothing(env: JobEnv) -> None:
    e = settings_env(env.settings)
    before = len(env.store.jobs.list(limit=None))
    for args in (
        ("backtest", "sma_crosss", "--symbols", "AAA", "--submit"),
        ("backtest", "sma_cross", "--symbols", "ZZZ", "--submit"),
        ("backtest", "sma_cross", "--symbols", "AAA", "--param", "fast=0", "--submit"),
        ("backtest", "sma_cross", "--symbols", "AAA", "--queue", "fast", "--submit"),
        ("jobs", "cancel", "nosuchjob"),
        ("jobs", "list", "--state", "sleeping"),
    ):
        proc = run_cli(e, *args)
        assert proc.code == 2, (args, proc.err)
        lines = proc.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.err
        assert "Traceback" not in proc.err
    assert len(env.store.jobs.list(limit=None)) == before
    assert sum(queue_lengths(env.client.redis, env.client.keys).values()) == 0


def test_redis_start_status_stop_embedded(tmp_path: Path) -> None:
    e = embedded_env(tmp_path)
    start = run_cli(e, "redis", "start")
    assert start.code == 0, start.err
    try:
        status = json.loads(run_cli(e, "redis", "status", "--json").out)
        roles = {s["role"]: s for s in status["servers"]}
        assert roles["durable"]["running"] and roles["cache"]["running"]
        assert roles["durable"]["address"] == f"127.0.0.1:{e['TRADERUNNER_REDIS_PORT']}"
        assert Path(status["password_file"]).stat().st_mode & 0o777 == 0o600
    finally:
        stop = run_cli(e, "redis", "stop")
    assert stop.code == 0
    status = json.loads(run_cli(e, "redis", "status", "--json").out)
    assert not any(s["running"] for s in status["servers"])


def test_redis_commands_refuse_an_external_url(env: JobEnv) -> None:
    proc = run_cli(settings_env(env.settings), "redis", "start")
    assert proc.code == 2
    assert "TRADERUNNER_REDIS_URL is set" in proc.err
    assert env.settings.redis_url.split("@")[0].split(":")[-1] not in proc.err  # password
