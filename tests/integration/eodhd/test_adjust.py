"""adjusted_close stored and used: daily backtests see split- and dividend-adjusted prices.

The fake serves end-of-day bars as EODHD does (raw OHLC, split-adjusted volume, an
``adjusted_close`` for splits and dividends); TSLA.US splits 3:1 and AAPL.US pays a 2 %
dividend inside the range.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.integration.eodhd.fake_eodhd import FakeEodhd, expected_bars
from tests.integration.eodhd.test_cli_fetch import Env
from tests.redishelpers import RedisPair
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import OptionError
from traderunner.jobs.spec import BacktestSpec, SweepSpec, spec_from_dict
from traderunner.marketdata.adjust import apply_adjustment
from traderunner.marketdata.fetch import fetch_to_store
from traderunner.marketdata.providers.eodhd import EodhdProvider
from traderunner.store import Store

NS = 1_000_000_000
START, END = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 6, 28, tzinfo=UTC)
SPLIT, EX_DAY = date(2024, 3, 15), date(2024, 4, 10)


def _teach(fake: FakeEodhd) -> None:
    fake.splits["TSLA.US"] = (SPLIT, 3.0)
    fake.dividends["AAPL.US"] = (EX_DAY, 0.02)


def _day(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * NS


def test_adjusted_closes_are_stored_and_each_mode_gives_its_prices(
    fake: FakeEodhd, provider: EodhdProvider, store: Store
) -> None:
    _teach(fake)
    report = fetch_to_store(store, provider, ["AAPL.US", "TSLA.US"], "D1", START, END)
    assert report.ok
    raw = {s: store.candles.load(s, Timeframe.D1) for s in ("AAPL.US", "TSLA.US")}
    truth = {s: expected_bars(s, Timeframe.D1, _day(START.date()), _day(END.date())) for s in raw}
    before = raw["TSLA.US"].ts < _day(SPLIT)
    # Stored as EODHD sends them: raw prices, a 3x step down at the split.
    assert np.allclose(raw["TSLA.US"].close[before], truth["TSLA.US"].close[before] * 3)
    ts, adj = store.adjusted.load("TSLA.US")
    assert np.array_equal(ts, raw["TSLA.US"].ts) and np.allclose(adj, truth["TSLA.US"].close)

    none, applied = apply_adjustment(store, raw, "none")
    assert applied == {"AAPL.US": "none", "TSLA.US": "none"} and none["TSLA.US"] is raw["TSLA.US"]
    splits, applied = apply_adjustment(store, raw, "splits")
    assert applied == {"AAPL.US": "splits", "TSLA.US": "splits"}
    for column in ("open", "high", "low", "close"):  # the split undone, the dividend not
        assert np.allclose(getattr(splits["TSLA.US"], column), getattr(truth["TSLA.US"], column))
    assert np.allclose(splits["AAPL.US"].close, raw["AAPL.US"].close)
    everything, applied = apply_adjustment(store, raw, None)  # the default: all
    assert applied == {"AAPL.US": "all", "TSLA.US": "all"}
    paid = raw["AAPL.US"].ts < _day(EX_DAY)
    assert np.allclose(everything["AAPL.US"].close[paid], truth["AAPL.US"].close[paid] * 0.98)
    assert np.allclose(everything["AAPL.US"].close[~paid], truth["AAPL.US"].close[~paid])
    assert np.array_equal(everything["TSLA.US"].volume, raw["TSLA.US"].volume)  # as given
    intraday = {"AAPL.US": store.candles.load("AAPL.US", Timeframe.D1).slice(0, 0)}
    assert apply_adjustment(store, intraday, "all")[1] == {"AAPL.US": "none"}
    with pytest.raises(OptionError, match=r"none .*splits or all"):
        apply_adjustment(store, raw, "dividends")


def test_the_job_spec_carries_adjust_and_refuses_a_bad_one() -> None:
    spec = BacktestSpec("sma_cross", ("AAPL.US",), "D1", adjust="splits")
    assert spec_from_dict(spec.to_dict()) == spec
    assert spec_from_dict({**spec.to_dict(), "adjust": None}).adjust == "all"  # old specs
    sweep = SweepSpec("sma_cross", ("AAPL.US",), {"fast": [5]}, "D1", adjust="none")
    assert spec_from_dict(sweep.to_dict()) == sweep
    with pytest.raises(OptionError, match="adjust 'raw' is not a mode"):
        spec_from_dict({**spec.to_dict(), "adjust": "raw"})


@pytest.fixture
def env(fake: FakeEodhd, redis_pair: RedisPair, tmp_path: Path) -> Env:
    (tmp_path / "data").mkdir()
    return Env(tmp_path / "data", fake, redis_pair, f"t{uuid.uuid4().hex[:8]}:")


def test_a_daily_backtest_adjusts_by_default_and_records_what_it_applied(env: Env) -> None:
    _teach(env.fake)
    fetched = env.run("data", "fetch", "--symbols", "TSLA.US", "-t", "D1",
                      "--from", "2024-01-02", "--to", "2024-06-28")  # fmt: skip
    assert fetched.code == 0, fetched.err
    runs = {}
    for mode in ("none", "splits", "all", None):
        extra = [] if mode is None else ["--adjust", mode]
        ran = env.run("backtest", "sma_cross", "--symbols", "TSLA.US", "-t", "D1", "--json",
                      *extra)  # fmt: skip
        assert ran.code == 0, ran.err
        runs[mode] = ran.json()
    assert [runs[m]["adjust"] for m in ("none", "splits", "all", None)] == [
        "none", "splits", "all", "all"
    ]  # fmt: skip
    # Raw prices see the split as a crash; adjusted ones do not: the results differ.
    assert runs["none"]["metrics"] != runs["splits"]["metrics"]
    assert runs[None]["metrics"] == runs["all"]["metrics"]
    shown = env.run("results", "show", runs["splits"]["result_id"], "--json")
    assert shown.code == 0, shown.err
    assert shown.json()["adjust"] == "splits"  # the saved run records it
    bad = env.run_here("backtest", "sma_cross", "--symbols", "TSLA.US", "-t", "D1",
                       "--adjust", "raw")  # fmt: skip
    assert bad.code == 2 and "adjust 'raw' is not a mode" in bad.err
