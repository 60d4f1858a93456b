"""The job commands of the CLI, run as real processes against a real worker."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.clihelpers import Ran, run_process
from tests.jobenv import JobEnv, job_env
from tests.jobhelpers import settings_env
from tests.redishelpers import RedisPair, embedded_env
from traderunner.domain.timeframe import Timeframe
from traderunner.engine import run_backtest
from traderunner.jobs import NoopSpec
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
    # The result is what the same backtest run here prints with --json.
    result = payload["result"]
    assert result["trades"] == len(result["trade_list"]) > 0
    assert result["params"] == {"fast": 5, "slow": 30, "mode": "cross"} and result["symbols"] == [
        "AAA",
        "BBB",
    ]
    assert result["options"]["fill"] == "next_open"  # every option, defaults included
    # What the worker computed is what the engine computes here on the same candles.
    candles = load_candles(env.store, ["AAA", "BBB"], Timeframe.M5, None, None)
    direct = run_backtest("sma_cross", candles, {"fast": 5, "slow": 30})
    assert result["trades"] == direct.n_trades
    assert result["metrics"]["total_return"] == pytest.approx(direct.metrics["total_return"])
    assert payload["spec"]["params"] == {"fast": 5, "slow": 30, "mode": "cross"}
    assert payload["owner"] == getpass.getuser()
    local = run_cli(
        settings_env(env.settings),
        "backtest", "sma_cross", "--symbols", "AAA,BBB", "-p", "fast=5", "-p", "slow=30",
        "--no-save", "--json",
    )  # fmt: skip
    assert local.code == 0, local.err
    assert json.loads(local.out)["metrics"] == result["metrics"]
    assert json.loads(local.out)["trade_list"] == result["trade_list"]
    listed = json.loads(run_cli(settings_env(env.settings), "jobs", "list", "--json").out)
    assert payload["id"] in [j["id"] for j in listed["jobs"]]
    assert listed["total"] >= len(listed["jobs"]) >= 1
    shown = run_cli(settings_env(env.settings), "jobs", "show", payload["id"][:10], "--json")
    assert json.loads(shown.out)["result"]["metrics"] == result["metrics"]


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
    assert followed.code == 0, followed.err
    assert json.loads(followed.out)["state"] == "succeeded"
    shown = json.loads(run_cli(e, "jobs", "show", job["id"], "--json", "--top", "3").out)
    assert shown["result"]["combinations"] == 9 and len(shown["result"]["rows"]) == 3
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


def test_submit_prints_the_local_tables_and_honours_every_output_option(
    env: JobEnv, tmp_path: Path
) -> None:
    e = settings_env(env.settings)
    bt = run_cli(
        e, "backtest", "sma_cross", "--symbols", "AAA", "--fees-bps", "2", "--stop-loss", "0.05",
        "--trades", "3", "--submit",
    )  # fmt: skip
    assert bt.code == 0, bt.err
    # The header says what ran and how; then the local run's metric and trade tables.
    assert "sma_cross fast=10 slow=50" in bt.out and "AAA  ·  M5  ·  all data" in bt.out
    assert "long only" in bt.out and "fees 2 bps" in bt.out and "stop-loss 5%" in bt.out
    assert "total_return" in bt.out and "last 3 of" in bt.out
    assert "{'" not in bt.out  # no raw dicts
    rows = tmp_path / "rows.csv"
    sw = run_cli(
        e, "sweep", "sma_cross", "--symbols", "AAA", "--grid", "fast=5:15:5",
        "--grid", "slow=20:40:10", "--top", "2", "--sort", "total_return", "--csv", str(rows),
        "--submit",
    )  # fmt: skip
    assert sw.code == 0, sw.err
    assert "top 2 of 9 by total_return" in sw.out
    frame = pd.read_csv(rows)
    assert len(frame) == 9 and {"fast", "slow", "sharpe", "total_return"} <= set(frame.columns)
    ranked = frame.sort_values("total_return", ascending=False)
    best = ranked.iloc[0]
    assert f"│ 1 │ {int(best['fast']):>4} │ {int(best['slow']):>4} │" in sw.out
    refused = run_cli(e, "sweep", "sma_cross", "-s", "AAA", "-g", "fast=5,10", "--csv",
                      str(tmp_path / "x.csv"), "--submit", "--no-follow")  # fmt: skip
    assert refused.code == 2 and "--csv is written when the sweep has finished" in refused.err
    assert not (tmp_path / "x.csv").exists()


def test_a_command_that_waits_exits_with_the_jobs_outcome(env: JobEnv) -> None:
    e = settings_env(env.settings)
    failed = run_cli(e, "backtest", "exploding", "--symbols", "AAA", "--submit")
    assert failed.code == 3, (failed.out, failed.err)
    assert "exploding strategy: division by zero at bar 3" in failed.out
    job_id = failed.err.split("submitted backtest job ")[1].split()[0]
    again = run_cli(e, "jobs", "follow", job_id[:8], "--json")
    assert again.code == 3
    job = json.loads(again.out)
    assert job["id"] == job_id and job["state"] == "failed" and "result" not in job
    assert job["message"] == job["error"] != ""  # a failed job's message is its error
    # Cancelled: the workers are busy, so the sweep waits until it is cancelled.
    blockers = [env.client.submit(NoopSpec(sleep_s=30)) for _ in range(2)]
    try:
        queued = run_cli(e, "sweep", "sma_cross", "-s", "AAA", "-g", "fast=5,10",
                         "--submit", "--no-follow", "--json")  # fmt: skip
        assert queued.code == 0, queued.err  # submitting without waiting is not an outcome
        sweep_id = json.loads(queued.out)["id"]
        assert run_cli(e, "jobs", "cancel", sweep_id[:6]).code == 0
        followed = run_cli(e, "jobs", "follow", sweep_id)
        assert followed.code == 4, (followed.out, followed.err)
        assert "cancelled after 0 of 2 chunks (0 of 2 combinations)" in followed.out, followed.out
    finally:
        for b in blockers:
            env.client.cancel(b.id, actor="")


def test_jobs_list_and_show_are_tables_of_what_ran(env: JobEnv) -> None:
    e = settings_env(env.settings)
    sub = run_cli(e, "backtest", "ema_cross", "--symbols", "BBB", "--owner", "alice",
                  "--name", "for alice", "--submit", "--json")  # fmt: skip
    assert sub.code == 0, sub.err
    job = json.loads(sub.out)
    assert job["owner"] == "alice"
    listed = run_cli(e, "jobs", "list", "--owner", "alice", "--strategy", "ema_cross")
    assert listed.code == 0, listed.err
    row = next(line for line in listed.out.splitlines() if job["id"] in line)
    assert "ema_cross" in row and "BBB" in row and "succeeded" in row and "alice" in row
    assert "of 1" in listed.out  # the page says how many match in all
    shown = run_cli(e, "jobs", "show", job["id"][:8], "--trades", "2")
    assert shown.code == 0, shown.err
    assert f"job {job['id']}" in shown.out and "owner" in shown.out
    assert 'ema_cross fast=12 slow=26 mode=cross "for alice"  ·  BBB  ·  M5' in shown.out
    assert "metrics" in shown.out and "last 2 of" in shown.out and "{'" not in shown.out
    # The job's run is a saved result like any other, under the job's id.
    results = json.loads(run_cli(e, "results", "list", "--owner", "alice", "--json").out)
    assert [(r["id"], r["origin"], r["name"]) for r in results["results"]] == [
        (job["id"], "job", "for alice")
    ]


def test_cancel_and_retry_refuse_another_users_job_without_admin(env: JobEnv) -> None:
    e = settings_env(env.settings)
    job = env.client.submit(NoopSpec(sleep_s=30), owner="somebody-else")
    refused = run_cli(e, "jobs", "cancel", job.id)
    assert refused.code == 2
    assert refused.err.strip() == (
        f"error: job {job.id} belongs to 'somebody-else', not to '{getpass.getuser()}': only "
        "its owner or an admin may change it (the CLI: --admin)"
    )
    assert not env.client.status(job.id).state.terminal
    assert run_cli(e, "jobs", "cancel", job.id, "--admin").code == 0
    assert env.client.wait(job.id, timeout=15).state.value == "cancelled"
    assert run_cli(e, "jobs", "retry", job.id).code == 2
    assert env.client.status(job.id).state.value == "cancelled"
