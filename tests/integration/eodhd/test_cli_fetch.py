"""``traderunner data fetch`` / ``data gaps`` end to end: real processes, server, Redis, store."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.clihelpers import Ran, clean_env, run_here, run_process
from tests.integration.eodhd.conftest import TOKEN
from tests.integration.eodhd.fake_eodhd import FakeEodhd, expected_bars
from tests.redishelpers import RedisPair
from traderunner.config import load_settings
from traderunner.domain.timeframe import Timeframe
from traderunner.ratelimit import limiter_from_settings

NS = 1_000_000_000
FROM, TO = "2024-03-04", "2024-03-22"  # three weeks of M5, long settled: cacheable
SYMBOLS = ("AAPL.US", "TSLA.US")


@dataclass
class Env:
    """Environment of one CLI user: a data dir, the fake API, the shared Redis pair."""

    data_dir: Path
    fake: FakeEodhd
    pair: RedisPair
    prefix: str

    def vars(self, **extra: str) -> dict[str, str]:
        settings = {
            "TRADERUNNER_DATA_DIR": str(self.data_dir),
            "TRADERUNNER_EODHD_BASE_URL": self.fake.url,
            "TRADERUNNER_EODHD_TOKEN": TOKEN,
            "TRADERUNNER_REDIS_URL": self.pair.durable.url,
            "TRADERUNNER_CACHE_URL": self.pair.cache.url,
            "TRADERUNNER_REDIS_PREFIX": self.prefix,
        }
        return clean_env(**(settings | extra))  # extra overrides, e.g. an empty token

    def run(self, *args: str, **extra: str) -> Ran:
        """``python -m traderunner ARGS`` in a fresh process."""
        return run_process(args, self.vars(**extra), cwd=self.data_dir.parent)

    def run_here(self, *args: str, **extra: str) -> Ran:
        """The same CLI in this process (fast; for the bad-input cases)."""
        return run_here(args, self.vars(**extra), cwd=self.data_dir.parent)

    def settings(self) -> Any:
        return load_settings(
            data_dir=self.data_dir,
            redis_url=self.pair.durable.url,
            cache_url=self.pair.cache.url,
            redis_prefix=self.prefix,
        )


@pytest.fixture
def env(fake: FakeEodhd, redis_pair: RedisPair, tmp_path: Path) -> Env:
    (tmp_path / "data").mkdir()
    return Env(tmp_path / "data", fake, redis_pair, f"t{uuid.uuid4().hex[:8]}:")


def fetch_args(*extra: str) -> list[str]:
    return ["data", "fetch", "--provider", "eodhd", "--symbols", ",".join(SYMBOLS),
            "--timeframe", "M5", "--from", FROM, "--to", TO, *extra]  # fmt: skip


def bars_in_range(symbol: str) -> int:
    lo = int(datetime.fromisoformat(FROM).replace(tzinfo=UTC).timestamp()) * NS
    hi = int(datetime.fromisoformat(TO).replace(tzinfo=UTC).timestamp()) * NS + 86_400 * NS - 1
    return len(expected_bars(symbol, Timeframe.M5, lo, hi))


def test_fetch_stores_both_symbols_then_a_rerun_asks_nothing(env: Env) -> None:
    ran = env.run(*fetch_args("--json"))
    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["ok"] and report["requests"] == 2 and report["cache_hits"] == 0
    assert [s["bars_written"] for s in report["symbols"]] == [bars_in_range(s) for s in SYMBOLS]
    assert len(env.fake.requests()) == 2
    listed = env.run("data", "list", "--json").json()["series"]
    assert {(s["symbol"], s["source"], s["bars"]) for s in listed} == {
        (s, "eodhd", bars_in_range(s)) for s in SYMBOLS
    }
    # Two intraday requests: 2 against the minute (requests), 10 against the day (calls).
    limiter = limiter_from_settings(env.settings())
    used = {u.name: u.used for u in limiter.usage()}
    limiter.close()
    assert used == {"minute": 2, "day": 10}

    again = env.run(*fetch_args("--json"))
    assert again.code == 0, again.err
    assert again.json()["requests"] == 0 and len(env.fake.requests()) == 2
    assert all(s["asked"] == [] for s in again.json()["symbols"])
    for text in (ran.out, ran.err, again.out, again.err):
        assert TOKEN not in text


def test_a_fresh_store_is_filled_from_the_response_cache_without_api_calls(
    env: Env, tmp_path: Path
) -> None:
    assert env.run(*fetch_args("--json")).code == 0
    assert len(env.fake.requests()) == 2
    other = Env(tmp_path / "other", env.fake, env.pair, env.prefix)  # same Redis, empty store
    other.data_dir.mkdir()
    ran = other.run(*fetch_args("--json"))
    assert ran.code == 0, ran.err
    assert ran.json()["cache_hits"] == 2 and ran.json()["requests"] == 0
    assert len(env.fake.requests()) == 2  # the API was not asked again
    assert ran.json()["bars_written"] == sum(bars_in_range(s) for s in SYMBOLS)


def test_a_partial_failure_exits_1_saying_what_is_stored_and_missing(env: Env) -> None:
    env.fake.cut_after, env.fake.cut_status = 1, 402  # the plan runs out after one answer
    ran = env.run(*fetch_args())
    assert ran.code == 1, ran.err
    assert "AAPL.US" in ran.out and "incomplete" in ran.out
    assert f"{bars_in_range('AAPL.US'):,}" in ran.out
    missing = [line for line in ran.out.splitlines() if line.startswith("missing ")]
    assert len(missing) == 1 and "TSLA.US" in missing[0] and "quota is spent" in missing[0]
    assert "run the same command again" in ran.out
    assert "resets at" in ran.out
    env.fake.reset()
    _clear_spent(env)  # midnight GMT came: the quota is back
    resumed = env.run(*fetch_args("--json"))
    assert resumed.code == 0, resumed.err
    aapl, tsla = resumed.json()["symbols"]
    assert aapl["requests"] == 0 and tsla["requests"] == 1
    assert [s.symbol for s in env.fake.requests()] == ["TSLA.US"]


@pytest.mark.parametrize(
    ("args", "extra", "pattern"),
    [
        (fetch_args(), {"TRADERUNNER_EODHD_TOKEN": ""}, "no EODHD API token: set TRADERUNNER_"),
        (
            ["data", "fetch", "--provider", "yahoo", "--symbols", "AAPL.US", "--from", FROM],
            {},
            "unknown provider 'yahoo'",
        ),
        (
            ["data", "fetch", "--symbols", "AAPL.US", "--timeframe", "M15", "--from", FROM],
            {},
            "EODHD does not serve M15",
        ),
        (["data", "fetch", "--symbols", "AAPL.US", "--from", "2024-13-01"], {}, "not a real date"),
        (
            ["data", "fetch", "--symbols", "AAPL.US", "--from", FROM, "--to", "2024-01-01"],
            {},
            "after its end",
        ),
        (["data", "fetch", "--from", FROM], {}, "--symbols is required"),
        (["data", "fetch", "--symbols", "AAPL.US"], {}, "--from is required"),
        (["data", "fetch", "--symbols", "AAPL", "--from", FROM], {}, r"CODE\.EXCHANGE"),
        (fetch_args(), {"TRADERUNNER_EODHD_BASE_URL": "ftp://x"}, "not an http"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_request(
    env: Env, args: list[str], extra: dict[str, str], pattern: str
) -> None:
    ran = env.run_here(*args, **extra)
    assert ran.code == 2, (ran.out, ran.err)
    assert len(ran.err.strip().splitlines()) == 1 and ran.out == ""
    assert env.fake.requests() == []
    assert re.search(pattern, ran.err), ran.err


def test_an_unknown_symbol_exits_1_and_names_the_format(env: Env) -> None:
    ran = env.run_here("data", "fetch", "--symbols", "NOPE.US", "--from", FROM, "--to", TO)
    assert ran.code == 1
    assert "'NOPE.US'" in ran.out and "AAPL.US" in ran.out


def test_gaps_reports_the_sessions_the_provider_did_not_have(env: Env) -> None:
    env.fake.missing_days = {date(2024, 3, 12), date(2024, 3, 13)}
    assert env.run_here(*fetch_args("--json")).code == 0
    ran = env.run_here("data", "gaps", "--symbol", "aapl.us", "--timeframe", "M5", "--json")
    assert ran.code == 0, ran.err
    report = ran.json()
    assert report["missing_sessions"] == ["2024-03-12", "2024-03-13"]
    assert report["missing_runs"] == [{"from": "2024-03-12", "to": "2024-03-13"}]
    assert report["gaps"] == [] and report["duplicates"] == [] and not report["clean"]
    text = env.run_here("data", "gaps", "--symbol", "AAPL.US")
    assert "missing sessions: 2 (2024-03-12 .. 2024-03-13" in text.out
    unknown = env.run_here("data", "gaps", "--symbol", "MSFT.US")
    assert unknown.code == 2 and "MSFT.US" in unknown.err


def test_the_synthetic_provider_fetches_offline_and_says_so(env: Env) -> None:
    ran = env.run_here(
        "data", "fetch", "--provider", "synthetic", "--symbols", "DEMO", "--timeframe", "M15",
        "--from", FROM, "--to", TO,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "SYNTHETIC" in ran.out and env.fake.requests() == []


def _clear_spent(env: Env) -> None:
    limiter = limiter_from_settings(env.settings())
    limiter.reset()
    limiter.close()
