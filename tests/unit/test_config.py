"""Settings from a TOML file: the data directory's traderunner.toml or --config; env wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clihelpers import run_here
from traderunner.config import load_settings
from traderunner.errors import ConfigError


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TRADERUNNER_* setting from outside; a fresh data directory."""
    import os

    for key in [k for k in os.environ if k.startswith("TRADERUNNER_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env of the caller's
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("TRADERUNNER_DATA_DIR", str(data))
    return data


def test_the_data_directory_file_is_read_and_the_environment_wins(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (env / "traderunner.toml").write_text(
        'redis_port = 23456\ncache_maxmemory = "64mb"\nreconcile_grace = 2.5\n'
    )
    settings = load_settings()
    assert (settings.redis_port, settings.cache_maxmemory, settings.reconcile_grace) == (
        23456,
        "64mb",
        2.5,
    )
    assert settings.config == env / "traderunner.toml"
    monkeypatch.setenv("TRADERUNNER_REDIS_PORT", "23457")
    assert load_settings().redis_port == 23457  # the environment wins over the file
    assert load_settings().cache_maxmemory == "64mb"  # the rest still comes from the file
    assert load_settings(redis_port=23458).redis_port == 23458  # a CLI option wins over both


def test_no_file_means_defaults(env: Path) -> None:
    settings = load_settings()
    assert settings.config is None and settings.redis_port == 6479


def test_an_explicit_file_replaces_the_data_directory_one(env: Path, tmp_path: Path) -> None:
    (env / "traderunner.toml").write_text("redis_port = 23456\n")
    other = tmp_path / "elsewhere.toml"
    elsewhere = tmp_path / "other-data"
    other.write_text(f'cache_port = 23999\ndata_dir = "{elsewhere}"\n')
    settings = load_settings(config=other)
    assert settings.cache_port == 23999 and settings.redis_port == 6479
    assert settings.config == other
    # data_dir may come from an explicit file, but the environment still wins.
    assert settings.data_dir == env


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("redis_prot = 1\n", ("redis_prot", "redis_port", "traderunner.toml")),
        ('redis_port = "abc"\n', ("redis_port in", "traderunner.toml", "integer")),
        ("redis_port = [\n", ("not valid TOML", "traderunner.toml")),
        ('data_dir = "/elsewhere"\n', ("data_dir", "--data-dir")),
    ],
    ids=["unknown key", "bad value", "not toml", "data_dir in its own file"],
)
def test_a_bad_file_is_one_clear_error(env: Path, text: str, needles: tuple[str, ...]) -> None:
    (env / "traderunner.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_a_missing_config_file_is_an_error(env: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config=tmp_path / "nope.toml")


def test_the_cli_reads_config_and_says_what_is_wrong(env: Path, tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text("redis_port = 23456\ncache_port = 23457\n")
    ran = run_here(
        ["--config", str(good), "redis", "status", "--json"], {"TRADERUNNER_DATA_DIR": str(env)}
    )
    assert ran.code == 0, ran.err
    ports = {s["role"]: s["address"] for s in ran.json()["servers"]}
    assert ports == {"durable": "127.0.0.1:23456", "cache": "127.0.0.1:23457"}
    bad = tmp_path / "bad.toml"
    bad.write_text("redis_prot = 1\n")
    ran = run_here(["--config", str(bad), "redis", "status"], {"TRADERUNNER_DATA_DIR": str(env)})
    assert ran.code == 2 and len(ran.err_lines) == 1, ran.err
    assert ran.err_lines[0].startswith("error: unknown setting 'redis_prot'")
