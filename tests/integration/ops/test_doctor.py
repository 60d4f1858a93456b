"""``traderunner doctor`` against real servers: a healthy deployment passes (exit 0, the canary
ran on a real worker); no worker, a wrong password and a durable server that can evict each
fail (exit 1) with one line naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clihelpers import run_here
from tests.jobenv import job_env, make_settings
from tests.redishelpers import RedisPair
from traderunner.config import Settings
from traderunner.store import Store

pytestmark = pytest.mark.slow


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    values = {
        "TRADERUNNER_DATA_DIR": str(settings.data_dir),
        "TRADERUNNER_REDIS_URL": settings.redis_url,
        "TRADERUNNER_CACHE_URL": settings.cache_url,
        "TRADERUNNER_REDIS_PREFIX": settings.redis_prefix,
        "TRADERUNNER_STORE_URL": settings.store_url,
        "TRADERUNNER_STRATEGY_PATH": settings.strategy_path,
    }
    values.update(extra)
    return values


def _line(out: str, start: str) -> str:
    found = [line for line in out.splitlines() if line.startswith(start)]
    assert len(found) == 1, f"no single line starting {start!r} in:\n{out}"
    return found[0]


def test_healthy_deployment_passes_with_a_canary(redis_pair: RedisPair, tmp_path: Path) -> None:
    with job_env(redis_pair, tmp_path, concurrency=1) as env:
        ran = run_here(["doctor", "--canary-deadline", "60"], _env(env.settings))
        assert ran.code == 0, ran.out + ran.err
        assert "all checks passed" in ran.out
        assert "completed in" in _line(ran.out, "OK   canary job interactive")
        assert "completed in" in _line(ran.out, "OK   canary job batch")
        assert "1 live" in _line(ran.out, "OK   workers batch")
        assert "noeviction" in _line(ran.out, "OK   redis durable policy")
        # The canaries are real jobs of their own owner, and they succeeded.
        jobs = [j for j in env.client.list(owner="doctor")]
        assert len(jobs) == 2 and {j.state.value for j in jobs} == {"succeeded"}

        as_json = run_here(["doctor", "--json"], _env(env.settings))
        assert as_json.code == 0
        assert as_json.json()["ok"] is True


def test_no_worker_fails_with_the_command_to_start_one(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    settings = make_settings(redis_pair, tmp_path)
    Store.from_settings(settings).close()  # a migrated store, and no worker
    ran = run_here(["doctor"], _env(settings))
    assert ran.code == 1
    line = _line(ran.out, "FAIL workers interactive")
    assert "no live worker" in line and "-> traderunner worker" in line
    assert "-> traderunner worker" in _line(ran.out, "FAIL canary job")
    assert "OK   redis durable:" in ran.out  # the rest was still checked


def test_wrong_password_fails_in_one_line(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = make_settings(redis_pair, tmp_path)
    Store.from_settings(settings).close()
    port = redis_pair.durable.port
    ran = run_here(
        ["doctor"],
        _env(
            settings,
            TRADERUNNER_REDIS_URL=f"redis://:wrong-password@127.0.0.1:{port}/0",
            TRADERUNNER_CACHE_URL=redis_pair.cache.url,
        ),
    )
    assert ran.code == 1
    line = _line(ran.out, "FAIL redis durable:")
    assert "refused the password" in line and "TRADERUNNER_REDIS_URL" in line
    assert "wrong-password" not in ran.out + ran.err  # masked
    assert "OK   redis cache:" in ran.out


def test_a_durable_server_that_can_evict_fails(redis_pair: RedisPair, tmp_path: Path) -> None:
    settings = make_settings(redis_pair, tmp_path)
    Store.from_settings(settings).close()
    # The cache server (allkeys-lru, no persistence) named as the durable one.
    ran = run_here(
        ["doctor"],
        _env(
            settings,
            TRADERUNNER_REDIS_URL=redis_pair.cache.url,
            TRADERUNNER_CACHE_URL=redis_pair.cache.url,
        ),
    )
    assert ran.code == 1
    policy = [ln for ln in ran.out.splitlines() if ln.startswith("FAIL redis durable policy")]
    assert len(policy) == 2  # eviction policy and persistence, one line each
    assert any("noeviction" in ln for ln in policy)
    assert any("appendonly yes" in ln for ln in policy)
    assert all("traderunner deploy redis-conf" in ln for ln in policy)


def test_schema_behind_the_code_fails(redis_pair: RedisPair, tmp_path: Path) -> None:
    import sqlalchemy as sa

    settings = make_settings(redis_pair, tmp_path)
    Store.from_settings(settings).close()
    engine = sa.create_engine(settings.store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001_baseline'"))
    engine.dispose()
    ran = run_here(["doctor"], _env(settings))
    assert ran.code == 1
    line = _line(ran.out, "FAIL store schema")
    assert "0001_baseline" in line and "migrates it" in line
