"""store.candles against a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from traderunner.domain import CandleArrays, Timeframe
from traderunner.errors import DataRangeError
from traderunner.marketdata import synthetic_candles
from traderunner.store import SeriesInfo, Store

from .store_helpers import NS, T0, assert_same_bars, make_candles


def test_round_trip_keeps_every_value_and_the_source(store: Store) -> None:
    bars = synthetic_candles(
        "AAPL", Timeframe.M5, datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 7, tzinfo=UTC)
    )
    write = store.candles.upsert(bars)
    assert (write.kind, write.bars, write.inserted, write.changed) == (
        "new",
        len(bars),
        len(bars),
        0,
    )
    assert write.previous is None and write.series == store.candles.series("AAPL", Timeframe.M5)
    loaded = store.candles.load("AAPL", Timeframe.M5)
    assert_same_bars(loaded, bars)
    assert loaded.symbol == "AAPL"
    assert loaded.timeframe is Timeframe.M5
    assert loaded.source == "synthetic"
    assert loaded.ts.dtype == np.int64
    assert loaded.close.dtype == np.float64
    assert loaded.meta == {"version": 1, "generation": write.series.generation}


def test_load_bounds_are_inclusive_and_match_between(store: Store) -> None:
    bars = make_candles(200)
    store.candles.upsert(bars)
    start_ns, end_ns = int(bars.ts[20]), int(bars.ts[119])
    window = store.candles.load("AAPL", Timeframe.M5, start_ns, end_ns)
    assert_same_bars(window, bars.between(start_ns, end_ns))
    assert len(window) == 100
    # Bounds between bars: the first bar at or after the start, the last at or before the end.
    inner = store.candles.load("AAPL", Timeframe.M5, start_ns + 1, end_ns - 1)
    assert_same_bars(inner, bars.slice(21, 119))
    assert_same_bars(store.candles.load("AAPL", Timeframe.M5, None, end_ns), bars.slice(0, 120))
    assert_same_bars(store.candles.load("AAPL", Timeframe.M5, start_ns, None), bars.slice(20, 200))


def test_upsert_replaces_overlapping_bars_and_keeps_the_rest(store: Store) -> None:
    first = make_candles(100, price=100.0, seed=1)
    # Bars 50..149 of the same clock, at a clearly different price level.
    second = make_candles(100, start=T0 + 50 * 300, price=500.0, seed=2)
    store.candles.upsert(first)
    store.candles.upsert(second)
    loaded = store.candles.load("AAPL", Timeframe.M5)
    assert len(loaded) == 150
    assert_same_bars(loaded.slice(0, 50), first.slice(0, 50))
    assert_same_bars(loaded.slice(50, 150), second)
    info = store.candles.series("AAPL", Timeframe.M5)
    assert info is not None
    assert (info.count, info.first_ns, info.last_ns) == (150, int(first.ts[0]), int(second.ts[-1]))


def test_every_write_bumps_the_version_of_its_own_series_only(store: Store) -> None:
    store.candles.upsert(make_candles(10, symbol="AAPL"))
    store.candles.upsert(make_candles(10, symbol="MSFT"))
    aapl = store.candles.series("AAPL", Timeframe.M5)
    assert aapl is not None
    assert aapl.version == 1
    store.candles.upsert(make_candles(10, symbol="AAPL", seed=5))  # new values: a rewrite
    store.candles.upsert(make_candles(10, symbol="AAPL", seed=6))
    after = {s.symbol: s.version for s in store.candles.list_series()}
    assert after == {"AAPL": 3, "MSFT": 1}
    assert store.candles.load("AAPL", Timeframe.M5).meta["version"] == 3


def test_empty_upsert_writes_nothing(store: Store) -> None:
    write = store.candles.upsert(make_candles(0))
    assert (write.kind, write.bars, write.series) == ("unchanged", 0, None)
    assert store.candles.list_series() == []


def test_list_series_reports_every_series_sorted(store: Store) -> None:
    store.candles.upsert(make_candles(30, symbol="TSLA", source="csv"))
    store.candles.upsert(make_candles(5, symbol="AAPL", step=86_400, timeframe=Timeframe.D1))
    store.candles.upsert(make_candles(7, symbol="AAPL"))
    listed = store.candles.list_series()
    assert [(s.symbol, s.timeframe, s.count, s.source) for s in listed] == [
        ("AAPL", Timeframe.D1, 5, "test"),
        ("AAPL", Timeframe.M5, 7, "test"),
        ("TSLA", Timeframe.M5, 30, "csv"),
    ]
    tsla = listed[2]
    assert isinstance(tsla, SeriesInfo)
    assert tsla.first_ns == T0 * NS
    assert tsla.last_ns == (T0 + 29 * 300) * NS
    assert tsla.first == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert store.candles.series("TSLA", Timeframe.D1) is None


def test_a_series_mixing_sources_says_so_with_synthetic_first(store: Store) -> None:
    store.candles.upsert(make_candles(20, source="synthetic"))
    store.candles.upsert(make_candles(10, source="csv", seed=3))  # replaces bars 0..9 only
    info = store.candles.series("AAPL", Timeframe.M5)
    assert info is not None
    assert info.source == "synthetic+csv"
    assert store.candles.load("AAPL", Timeframe.M5).source == "synthetic+csv"
    # Replacing every bar leaves only the new source.
    store.candles.upsert(make_candles(20, source="csv", seed=4))
    info = store.candles.series("AAPL", Timeframe.M5)
    assert info is not None
    assert info.source == "csv"


def test_unknown_symbol_lists_what_the_store_has(store: Store) -> None:
    with pytest.raises(DataRangeError) as empty:
        store.candles.load("XYZ", Timeframe.M5)
    assert "no M5 candles for 'XYZ' in the store; available: none" in str(empty.value)
    store.candles.upsert(make_candles(5, symbol="AAPL"))
    store.candles.upsert(make_candles(5, symbol="MSFT", step=86_400, timeframe=Timeframe.D1))
    with pytest.raises(DataRangeError) as err:
        store.candles.load("XYZ", Timeframe.M5)
    message = str(err.value)
    assert "no M5 candles for 'XYZ' in the store; available: AAPL (M5), MSFT (D1)" in message
    assert "traderunner data import / data demo" in message
    # Known symbol, other timeframe: the same error, so the user sees the timeframes held.
    with pytest.raises(DataRangeError, match=r"no M5 candles for 'MSFT'.*MSFT \(D1\)"):
        store.candles.load("MSFT", Timeframe.M5)
    with pytest.raises(DataRangeError, match="did you mean 'AAPL'"):
        store.candles.load("aapl", Timeframe.M5)


def test_empty_range_names_the_range_that_exists(store: Store) -> None:
    store.candles.upsert(make_candles(12))
    before = (T0 - 86_400) * NS
    with pytest.raises(DataRangeError) as err:
        store.candles.load("AAPL", Timeframe.M5, before, before + 3600 * NS)
    message = str(err.value)
    assert "no M5 candles for 'AAPL' between 2024-01-01T14:30:00Z and 2024-01-01T15:30:00Z" in (
        message
    )
    assert "the store has 2024-01-02T14:30:00Z to 2024-01-02T15:25:00Z (12 bars)" in message
    with pytest.raises(DataRangeError, match="is after end"):
        store.candles.load("AAPL", Timeframe.M5, T0 * NS, (T0 - 1) * NS)


def test_upsert_refuses_candles_it_cannot_store_faithfully(store: Store) -> None:
    good = make_candles(5)

    def variant(**changes: object) -> CandleArrays:
        fields = {
            name: getattr(good, name)
            for name in ("ts", "open", "high", "low", "close", "volume", "symbol", "timeframe")
        }
        fields.update(changes)
        return CandleArrays(**fields)  # type: ignore[arg-type]

    with pytest.raises(DataRangeError, match="no symbol"):
        store.candles.upsert(variant(symbol=" "))
    with pytest.raises(DataRangeError, match="no timeframe"):
        store.candles.upsert(variant(timeframe=None))
    with pytest.raises(DataRangeError, match="strictly increasing time order at bars 1 and 2"):
        store.candles.upsert(variant(ts=good.ts[[0, 2, 1, 3, 4]]))
    with pytest.raises(DataRangeError, match="fraction of a second at bar 3"):
        store.candles.upsert(variant(ts=good.ts + np.array([0, 0, 0, 5, 0])))
    close = good.close.copy()
    close[4] = np.nan
    with pytest.raises(DataRangeError, match="close=nan at bar 4"):
        store.candles.upsert(variant(close=close))
    assert store.candles.list_series() == []


def test_a_failing_write_leaves_candles_and_series_untouched(store: Store) -> None:
    first = make_candles(50, price=100.0, seed=1)
    store.candles.upsert(first)
    # Overlaps bars 25..49 and adds 25 more, but its very last bar has high < low: the
    # database's CHECK constraint fails after the earlier rows were already sent.
    bad = make_candles(50, start=T0 + 25 * 300, price=300.0, seed=2)
    high, low = bad.high.copy(), bad.low.copy()
    high[-1], low[-1] = low[-1], high[-1]
    broken = CandleArrays(
        ts=bad.ts, open=bad.open, high=high, low=low, close=bad.close, volume=bad.volume,
        symbol="AAPL", timeframe=Timeframe.M5, source="csv",
    )  # fmt: skip
    with pytest.raises(DataRangeError, match="the store refused to write 50 M5 candles"):
        store.candles.upsert(broken)
    assert_same_bars(store.candles.load("AAPL", Timeframe.M5), first)
    info = store.candles.series("AAPL", Timeframe.M5)
    assert info is not None
    assert (info.version, info.count, info.source) == (1, 50, "test")


def test_timeframe_may_be_given_as_text(store: Store) -> None:
    store.candles.upsert(make_candles(3))
    assert len(store.candles.load("AAPL", "5m")) == 3  # type: ignore[arg-type]
    assert store.candles.series("AAPL", "M5") is not None  # type: ignore[arg-type]
