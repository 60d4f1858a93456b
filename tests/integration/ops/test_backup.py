"""``traderunner backup`` / ``backup restore`` on the embedded servers and a SQLite store: a
deployment wiped after its backup comes back whole (users, candles, the queued job's record
and its broker message), and a bad backup folder is one clear line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.clihelpers import run_here
from tests.redishelpers import free_port
from traderunner.config import load_settings
from traderunner.redisdb.embedded import embedded_servers
from traderunner.store import Store


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {
        "TRADERUNNER_DATA_DIR": str(tmp_path / "data"),
        "TRADERUNNER_REDIS_PORT": str(free_port()),
        "TRADERUNNER_CACHE_PORT": str(free_port()),
    }
    yield values
    run_here(["redis", "stop"], values)


def _durable(env: dict[str, str]) -> redis.Redis:
    settings = load_settings(
        data_dir=Path(env["TRADERUNNER_DATA_DIR"]),
        redis_port=int(env["TRADERUNNER_REDIS_PORT"]),
        cache_port=int(env["TRADERUNNER_CACHE_PORT"]),
    )
    durable, _ = embedded_servers(settings)
    return redis.Redis(port=durable.port, password=durable.password)


def test_backup_then_wipe_then_restore(env: dict[str, str], tmp_path: Path) -> None:
    data = Path(env["TRADERUNNER_DATA_DIR"])
    assert run_here(["redis", "start"], env).code == 0
    assert run_here(["data", "demo", "--symbols", "AAA", "--days", "5"], env).code == 0
    assert run_here(["user", "add", "bob", "--password-stdin"], env, stdin="s3cret-pw\n").code == 0
    queued = run_here(
        ["backtest", "sma_cross", "--symbols", "AAA", "--submit", "--no-follow", "--json"], env
    )
    assert queued.code == 0, queued.err
    job_id = queued.json()["id"]
    r = _durable(env)
    before = {k: r.dump(k) for k in r.scan_iter(match="tr:*")}
    assert any(b"interactive" in k for k in before) and f"tr:job:{job_id}".encode() in before

    ran = run_here(["backup", "--out", str(tmp_path / "bk")], env)
    assert ran.code == 0, ran.err
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["store"] == "store.db" and manifest["redis_keys"] == len(before)
    assert (tmp_path / "bk" / "durable" / "dump.rdb").stat().st_size > 0
    # A second backup into the same folder is refused, and changes nothing there.
    again = run_here(["backup", "--out", str(tmp_path / "bk")], env)
    assert again.code == 2 and "not empty" in again.err
    assert json.loads((tmp_path / "bk" / "manifest.json").read_text()) == manifest

    # Lose everything: Redis' data and the store.
    assert run_here(["redis", "stop"], env).code == 0
    shutil.rmtree(data / "redis" / "durable" / "appendonlydir")
    (data / "redis" / "durable" / "dump.rdb").unlink()
    for path in data.glob("traderunner.db*"):
        path.unlink()
    assert run_here(["redis", "start"], env).code == 0
    r = _durable(env)
    assert list(r.scan_iter(match="tr:*")) == []

    refused = run_here(["backup", "restore", str(tmp_path / "bk")], env)
    assert refused.code == 2 and "--yes" in refused.err
    ran = run_here(["backup", "restore", str(tmp_path / "bk"), "--yes"], env)
    assert ran.code == 0, ran.err
    after = {k: r.dump(k) for k in r.scan_iter(match="tr:*")}
    assert after.keys() == before.keys()
    for key in (f"tr:job:{job_id}".encode(), b"tr:interactive"):
        if key in before:
            assert after[key] == before[key]
    settings = load_settings(data_dir=data)
    store = Store.from_settings(settings)
    try:
        assert [u.name for u in store.users.list()] == ["bob"]
        assert [s.symbol for s in store.candles.list_series()] == ["AAA"]
        assert store.jobs.get(job_id) is not None
    finally:
        store.close()
    listed = run_here(["jobs", "list", "--json"], env)
    assert [j["id"] for j in listed.json()["jobs"]] == [job_id]
    r.close()


def test_restore_from_a_folder_that_is_no_backup(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    ran = run_here(["backup", "restore", str(tmp_path / "empty"), "--yes"], env)
    assert ran.code == 2
    assert ran.err_lines == [
        f"error: {tmp_path / 'empty'} holds no traderunner backup (manifest.json missing)"
    ]
