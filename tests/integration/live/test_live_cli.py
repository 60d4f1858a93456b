"""``traderunner live add|list|remove|pause|resume``: checked like a job spec, nothing written
when refused, one line for each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clihelpers import run_here
from traderunner.store import Store


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    settings = {"TRADERUNNER_DATA_DIR": str(tmp_path / "data")}
    assert run_here(["data", "demo", "--days", "2"], settings).code == 0
    return settings


def _names(env: dict[str, str]) -> list[str]:
    ran = run_here(["live", "list", "--json"], env)
    assert ran.code == 0, ran.err
    return [s["name"] for s in ran.json()["live"]]


def test_add_list_pause_resume_remove(env: dict[str, str]) -> None:
    ran = run_here(
        [
            "live", "add", "trend", "--strategy", "sma_cross", "--symbols", "AAPL,MSFT",
            "--timeframe", "M5", "--param", "fast=5", "--param", "slow=20", "--direction", "both",
        ],
        env,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    listed = run_here(["live", "list", "--json"], env).json()["live"]
    assert listed[0]["symbols"] == ["AAPL", "MSFT"]
    assert listed[0]["params"] == {"fast": 5, "slow": 20, "mode": "cross"}
    assert listed[0]["options"] == {"direction": "both"}
    assert listed[0]["paused"] is False
    assert run_here(["live", "pause", "trend"], env).code == 0
    assert run_here(["live", "list", "--json"], env).json()["live"][0]["paused"] is True
    assert run_here(["live", "resume", "trend"], env).code == 0
    assert run_here(["live", "list", "--json"], env).json()["live"][0]["paused"] is False
    again = run_here(["live", "add", "trend", "--strategy", "macd", "--symbols", "AAPL"], env)
    assert again.code == 2 and "exists already" in again.err
    assert run_here(["live", "remove", "trend"], env).code == 0
    assert _names(env) == []
    gone = run_here(["live", "remove", "trend"], env)
    assert gone.code == 2 and "no live strategy 'trend'" in gone.err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--strategy", "nope", "--symbols", "AAPL"], "unknown strategy 'nope'"),
        (["--strategy", "sma_cross", "--symbols", "ZZZ"], "no M5 candles for 'ZZZ'"),
        (["--strategy", "sma_cross", "--symbols", "AAPL", "-p", "fast=x"], "must be int"),
        (["--strategy", "sma_cross", "--symbols", "AAPL", "-p", "speed=3"], "unknown parameter"),
        (["--strategy", "sma_cross", "--symbols", "AAPL", "--size", "2"], "size must be"),
        (["--strategy", "sma_cross", "--symbols", "AAPL", "-t", "M7"], "M7"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    env: dict[str, str], args: list[str], says: str
) -> None:
    ran = run_here(["live", "add", "bad", *args], env)
    assert ran.code == 2
    assert len(ran.err_lines) == 1 and says in ran.err, ran.err
    with Store.connect(f"sqlite:///{Path(env['TRADERUNNER_DATA_DIR']) / 'traderunner.db'}") as s:
        assert s.live.list() == []


def test_bad_name_refused(env: dict[str, str]) -> None:
    ran = run_here(["live", "add", "a b", "--strategy", "sma_cross", "--symbols", "AAPL"], env)
    assert ran.code == 2 and "invalid" in ran.err
    assert _names(env) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["stream"], "no EODHD API token"),
        (["stream", "--feed", "ws"], "no EODHD API token"),
        (["stream", "--feed", "carrier-pigeon"], "--feed must be poll or ws"),
        (["stream", "--from", "2025-01-01"], "--from and --to are for --replay"),
        (["stream", "--keep-running"], "--keep-running is for --replay"),
        (["stream", "--max-wait", "5"], "--max-wait is for --replay"),
    ],
)
def test_stream_refuses_what_it_cannot_run(env: dict[str, str], args: list[str], says: str) -> None:
    assert (
        run_here(["live", "add", "s", "--strategy", "sma_cross", "--symbols", "AAPL"], env).code
        == 0
    )
    ran = run_here(args, env)
    assert ran.code == 2 and len(ran.err_lines) == 1 and says in ran.err, ran.err
