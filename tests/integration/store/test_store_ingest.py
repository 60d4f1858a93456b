"""marketdata ingestion into a real store: all-or-nothing imports, the demo, multi-symbol loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traderunner.domain import Timeframe
from traderunner.errors import DataFileError, DataRangeError
from traderunner.marketdata import (
    DEMO_SYMBOLS,
    demo_range,
    import_file,
    load_candles,
    load_demo,
    read_candle_file,
    synthetic_candles,
)
from traderunner.store import Store

from .store_helpers import assert_same_bars


def write_csv(path: Path, n: int, price: float = 100.0, break_last_row: bool = False) -> Path:
    times = pd.date_range("2024-03-04 14:30", periods=n, freq="5min", tz="UTC")
    close = price + np.arange(n) * 0.1
    frame = pd.DataFrame(
        {
            "time": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": close - 0.05,
            "high": close + 0.2,
            "low": close - 0.2,
            "close": close,
            "volume": np.full(n, 1000.0),
        }
    )
    if break_last_row:
        frame.loc[n - 1, "high"] = frame.loc[n - 1, "low"] - 1.0
    frame.to_csv(path, index=False)
    return path


def test_import_writes_the_file_and_reports_the_series(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "aapl.csv", 300)
    bars, write = import_file(store, path, "AAPL")  # the timeframe told from the times
    info = write.series
    assert info is not None and bars.meta["timeframe_inferred"] is True
    assert (info.symbol, info.timeframe, info.count, info.source, info.version) == (
        "AAPL",
        Timeframe.M5,
        300,
        "csv",
        1,
    )
    assert_same_bars(
        store.candles.load("AAPL", Timeframe.M5), read_candle_file(path, "AAPL", Timeframe.M5)
    )
    # The same file again changes nothing: same version, same generation, nothing written.
    _, again = import_file(store, path, "AAPL", Timeframe.M5)
    assert (again.kind, again.inserted, again.changed) == ("unchanged", 0, 0)
    assert again.series == info == store.candles.series("AAPL", Timeframe.M5)


def test_a_file_bad_at_its_last_row_leaves_the_store_untouched(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "bad.csv", 5000, break_last_row=True)
    with pytest.raises(DataFileError, match=r"row 5000 \(line 5001\): high .* is below low"):
        import_file(store, path, "AAPL", Timeframe.M5)
    assert store.candles.list_series() == []
    with pytest.raises(DataRangeError, match="available: none"):
        store.candles.load("AAPL", Timeframe.M5)


def test_a_bad_import_after_a_good_one_keeps_the_first_intact(store: Store, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", 200, price=100.0)
    import_file(store, good, "AAPL", Timeframe.M5)
    before = store.candles.load("AAPL", Timeframe.M5)
    # Same timestamps, other prices, broken at the end: it must not replace anything.
    bad = write_csv(tmp_path / "bad.csv", 200, price=900.0, break_last_row=True)
    with pytest.raises(DataFileError, match="row 200"):
        import_file(store, bad, "AAPL", Timeframe.M5)
    assert_same_bars(store.candles.load("AAPL", Timeframe.M5), before)
    info = store.candles.series("AAPL", Timeframe.M5)
    assert info is not None
    assert info.version == 1


def test_load_demo_stores_labelled_reproducible_data(store: Store) -> None:
    infos = load_demo(store, days=3)
    assert [i.symbol for i in infos] == list(DEMO_SYMBOLS)
    start, end = demo_range(3)
    for info in infos:
        assert info.source == "synthetic"
        assert info.timeframe is Timeframe.M5
        assert info.count == 3 * 78  # three full 09:30-16:00 sessions of 5-minute bars
        assert_same_bars(
            store.candles.load(info.symbol, Timeframe.M5),
            synthetic_candles(info.symbol, Timeframe.M5, start, end),
        )
    # The last demo day is the fixed anchor, Monday 2025-06-30 (15:55 New York = 19:55 UTC).
    assert str(infos[0].last) == "2025-06-30 19:55:00+00:00"
    again = load_demo(store, days=3)
    assert again == infos  # the same bars: nothing changed, not even the version


def test_load_candles_returns_the_symbols_in_order(store: Store) -> None:
    load_demo(store, symbols=("MSFT", "AAPL"), timeframe=Timeframe.H1, days=5)
    start, end = demo_range(2)
    data = load_candles(store, ["MSFT", "AAPL"], Timeframe.H1, start, end)
    assert list(data) == ["MSFT", "AAPL"]
    assert all(len(c) == 2 * 7 for c in data.values())  # 7 hourly bars a day, the last half
    assert data["AAPL"].source == "synthetic"
    everything = load_candles(store, ["AAPL"], Timeframe.H1, None, None)
    assert len(everything["AAPL"]) == 5 * 7
    with pytest.raises(DataRangeError, match="no H1 candles for 'TSLA'"):
        load_candles(store, ["AAPL", "TSLA", "NFLX"], Timeframe.H1, start, end)


def test_demo_needs_a_day_and_a_symbol(store: Store) -> None:
    with pytest.raises(DataRangeError, match="at least 1 day"):
        load_demo(store, days=0)
    with pytest.raises(DataRangeError, match="at least one symbol"):
        load_demo(store, symbols=[" "])
