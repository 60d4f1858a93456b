"""read_candle_file: the formats it accepts and a DataFileError, with its row, for every flaw."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traderunner.domain import Timeframe
from traderunner.errors import DataFileError
from traderunner.marketdata import read_candle_file

from .candle_rows import GOOD_ROWS, HEADER, WriteCsv

M5 = Timeframe.M5


def expected_ts() -> np.ndarray:
    return np.array([pd.Timestamp(r.split(",")[0]).value for r in GOOD_ROWS], dtype=np.int64)


def column(index: int) -> np.ndarray:
    return np.array([float(r.split(",")[index]) for r in GOOD_ROWS])


def with_row(i: int, row: str) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[i] = row
    return rows


def test_a_good_csv_is_read_exactly(write_csv: WriteCsv) -> None:
    path = write_csv()
    bars = read_candle_file(path, "AAPL", M5)
    np.testing.assert_array_equal(bars.ts, expected_ts())
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        np.testing.assert_array_equal(getattr(bars, name), column(i), err_msg=name)
    assert (bars.symbol, bars.timeframe, bars.source) == ("AAPL", M5, "csv")
    assert bars.meta["file"] == str(path)


def test_columns_match_in_any_case_and_volume_is_optional(write_csv: WriteCsv) -> None:
    rows = [",".join(r.split(",")[:5]) for r in GOOD_ROWS]
    bars = read_candle_file(write_csv(rows, header=" Date , OPEN,High,low,CLOSE"), "X", M5)
    np.testing.assert_array_equal(bars.ts, expected_ts())
    np.testing.assert_array_equal(bars.close, column(4))
    np.testing.assert_array_equal(bars.volume, np.zeros(len(GOOD_ROWS)))


@pytest.mark.parametrize("unit", [1, 1000])
def test_epoch_seconds_and_milliseconds(write_csv: WriteCsv, unit: int) -> None:
    rows = [
        f"{pd.Timestamp(r.split(',')[0]).value // 1_000_000_000 * unit},{r.split(',', 1)[1]}"
        for r in GOOD_ROWS
    ]
    bars = read_candle_file(write_csv(rows, header=HEADER.replace("time", "timestamp")), "X", M5)
    np.testing.assert_array_equal(bars.ts, expected_ts())


def test_offsets_are_converted_and_naive_times_are_utc(write_csv: WriteCsv) -> None:
    rows = list(GOOD_ROWS)
    rows[0] = rows[0].replace("2024-01-02T14:30:00Z", "2024-01-02T09:30:00-05:00")
    rows[1] = rows[1].replace("2024-01-02T14:35:00Z", "2024-01-02 14:35:00")
    rows[2] = rows[2].replace("2024-01-02T14:40:00Z", "2024-01-02T15:40:00+01:00")
    bars = read_candle_file(write_csv(rows, header=HEADER.replace("time", "DateTime")), "X", M5)
    np.testing.assert_array_equal(bars.ts, expected_ts())


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join([HEADER, *GOOD_ROWS]) + "\n")
    bars = read_candle_file(path, "X", M5)
    np.testing.assert_array_equal(bars.ts, expected_ts())
    np.testing.assert_array_equal(bars.high, column(2))


def good_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "Open": column(1),
            "High": column(2),
            "Low": column(3),
            "Close": column(4),
            "Volume": column(5),
        }
    )
    frame.index = pd.DatetimeIndex(pd.to_datetime(expected_ts(), unit="ns", utc=True))
    return frame


@pytest.mark.parametrize("naive", [False, True])
@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_with_a_datetime_index(tmp_path: Path, suffix: str, naive: bool) -> None:
    frame = good_frame()
    if naive:
        frame.index = frame.index.tz_localize(None)
    path = tmp_path / f"bars{suffix}"
    frame.to_parquet(path)
    bars = read_candle_file(path, "X", M5)
    np.testing.assert_array_equal(bars.ts, expected_ts())
    np.testing.assert_array_equal(bars.low, column(3))
    assert bars.source == "parquet"


def test_parquet_with_a_time_column_and_its_errors_name_the_row(tmp_path: Path) -> None:
    frame = good_frame().reset_index(names="timestamp")
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    np.testing.assert_array_equal(read_candle_file(path, "X", M5).ts, expected_ts())
    frame.loc[2, "Low"] = 200.0
    frame.to_parquet(path)
    with pytest.raises(DataFileError, match=r"bars\.parquet row 3: high 101\.2 is below low 200;"):
        read_candle_file(path, "X", M5)


def test_blank_lines_keep_row_numbers_and_trailing_ones_are_ignored(write_csv: WriteCsv) -> None:
    path = write_csv([*GOOD_ROWS, "", ""])
    assert len(read_candle_file(path, "X", M5)) == len(GOOD_ROWS)
    gap = write_csv([*GOOD_ROWS[:2], "", *GOOD_ROWS[2:]])
    with pytest.raises(DataFileError, match=r"row 3 \(line 4\): the time is empty"):
        read_candle_file(gap, "X", M5)


def test_a_daily_file_may_shift_an_hour_at_daylight_saving(write_csv: WriteCsv) -> None:
    # Midnight New York, as some exports write daily bars: 05:00 UTC, then 04:00 UTC.
    times = ["2024-03-08T05:00:00Z", "2024-03-11T04:00:00Z", "2024-03-12T04:00:00Z"]
    rows = [f"{t},{r.split(',', 1)[1]}" for t, r in zip(times, GOOD_ROWS, strict=False)]
    assert len(read_candle_file(write_csv(rows), "X", Timeframe.D1)) == 3


# (data row index to replace, replacement row, message expected after the row label)
ROW_ERRORS = [
    (2, "2024-01-02 banana,101.0,101.2,100.1,100.2,700", "time '2024-01-02 banana' is not a date"),
    (1, ",100.5,101.5,100.0,101.0,900", "the time is empty"),
    (3, "2024-01-02T14:20:00Z,100.2,100.9,99.8,100.8,650", "time 2024-01-02T14:20:00Z is earlier"),
    (4, "2024-01-02T14:45:00Z,100.8,102.0,100.7,101.9,1500", "has the same time 2024-01-02T14:45"),
    (
        1,
        "2024-01-02T14:35:00.5Z,100.5,101.5,100.0,101.0,900",
        "time 2024-01-02T14:35:00.500000Z has a fraction",
    ),
    (2, "2024-01-02T14:40:00Z,,101.2,100.1,100.2,700", "open is empty"),
    (2, "2024-01-02T14:40:00Z,101.0,101.2,100.1,NaN,700", "close is empty"),
    (0, "2024-01-02T14:30:00Z,100.0,abc,99.5,100.5,1200", "high 'abc' is not a number"),
    (5, "2024-01-02T14:55:00Z,101.9,102.1,0,101.1,800", "low 0 is not positive"),
    (4, "2024-01-02T14:50:00Z,-3,102.0,100.7,101.9,1500", "open -3 is not positive"),
    (3, "2024-01-02T14:45:00Z,99.0,99.0,99.5,99.2,650", "high 99 is below low 99.5"),
    (1, "2024-01-02T14:35:00Z,101.2,101.1,100.0,101.0,900", "high 101.1 is below open 101.2"),
    (1, "2024-01-02T14:35:00Z,100.5,100.8,100.0,101.0,900", "high 100.8 is below close 101"),
    (4, "2024-01-02T14:50:00Z,100.8,102.0,101.0,101.9,1500", "low 101 is above open 100.8"),
    (2, "2024-01-02T14:40:00Z,101.0,101.2,100.3,100.2,700", "low 100.3 is above close 100.2"),
    (5, "2024-01-02T14:55:00Z,101.9,102.1,101.0,101.1,-5", "volume -5 is negative"),
    (5, "2024-01-02T14:55:00Z,101.9,102.1,101.0,101.1,", "volume is empty"),
]


@pytest.mark.parametrize(("index", "row", "message"), ROW_ERRORS)
def test_every_bad_row_is_named_with_its_line(
    write_csv: WriteCsv, index: int, row: str, message: str
) -> None:
    path = write_csv(with_row(index, row))
    with pytest.raises(DataFileError) as err:
        read_candle_file(path, "AAPL", M5)
    text = str(err.value)
    assert text.startswith(f"{path} row {index + 1} (line {index + 2}): {message}"), text
    assert "; " in text  # and then what to do
    assert "\n" not in text


def test_the_count_of_similar_bad_rows_is_given(write_csv: WriteCsv) -> None:
    rows = with_row(1, "2024-01-02T14:35:00Z,100.5,101.5,100.0,101.0,-1")
    rows[4] = "2024-01-02T14:50:00Z,100.8,102.0,100.7,101.9,-2"
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\): volume -1 is negative \(2 rows"):
        read_candle_file(write_csv(rows), "X", M5)


def retimed(times: list[str]) -> list[str]:
    return [f"{t},{r.split(',', 1)[1]}" for t, r in zip(times, GOOD_ROWS, strict=True)]


def test_the_timeframe_is_told_from_the_times(write_csv: WriteCsv) -> None:
    bars = read_candle_file(write_csv(), "X")
    assert bars.timeframe is M5 and bars.meta["timeframe_inferred"] is True
    daily = retimed([f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9)])  # a weekend inside
    assert read_candle_file(write_csv(daily), "X").timeframe is Timeframe.D1


def test_a_timeframe_the_times_contradict_is_refused(write_csv: WriteCsv) -> None:
    daily = retimed([f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9)])
    path = write_csv(daily, name="daily.csv")
    with pytest.raises(DataFileError) as err:
        read_candle_file(path, "X", M5)  # the bug this guards: daily bars stored as M5
    text = str(err.value)
    assert text.startswith(f"{path}: the bars are D1 (most common gap 1 day (80% of 5 gaps)")
    assert text.endswith("not M5 as --timeframe says: drop --timeframe, or pass --timeframe D1")
    with pytest.raises(DataFileError, match=r"the bars are M5 .* not M15 as --timeframe says"):
        read_candle_file(write_csv(), "X", Timeframe.M15)
    assert read_candle_file(path, "X", Timeframe.D1).timeframe is Timeframe.D1


def test_times_that_cannot_tell_need_a_timeframe_which_is_then_checked(
    write_csv: WriteCsv,
) -> None:
    # 5, 12, 16, 28 and 29 minutes apart: no gap is common enough to be the bar size.
    clock = ("14:30", "14:35", "14:47", "15:03", "15:31", "16:00")
    odd = retimed([f"2024-01-02T{t}:00Z" for t in clock])
    path = write_csv(odd)
    with pytest.raises(DataFileError) as err:
        read_candle_file(path, "X")
    text = str(err.value)
    assert text.startswith(f"{path}: cannot tell the timeframe from the bar times: the bar times")
    assert "irregular" in text and text.endswith("if you know it")
    given = read_candle_file(path, "X", M5)
    assert given.timeframe is M5 and given.meta["timeframe_inferred"] is False
    # A given timeframe the times cannot confirm must still fit them: bars a bar apart at least.
    with pytest.raises(DataFileError, match=r"row 2 \(line 3\).*300 s after .*one M15 bar"):
        read_candle_file(path, "X", Timeframe.M15)
    one = write_csv(GOOD_ROWS[:1], name="one.csv")
    with pytest.raises(DataFileError, match=r"1 bar\(s\) are too few to tell the timeframe"):
        read_candle_file(one, "X")
    assert len(read_candle_file(one, "X", M5)) == 1


def test_missing_columns_list_what_was_found_and_what_is_needed(write_csv: WriteCsv) -> None:
    rows = [",".join(r.split(",")[i] for i in (0, 1, 4)) for r in GOOD_ROWS]
    with pytest.raises(DataFileError) as err:
        read_candle_file(write_csv(rows, header="when,open,close"), "X", M5)
    text = str(err.value)
    assert "missing column(s) a time column (time/timestamp/date/datetime), high, low" in text
    assert "found: when, open, close" in text
    assert "needed: a time column" in text


def test_file_level_problems(write_csv: WriteCsv, tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing.csv": "missing.csv: file not found",
        write_csv(name="bars.txt"): "unknown file type (suffix .txt); use a .csv",
        write_csv([], header=None, name="empty.csv"): "empty.csv: has no data rows",
        write_csv([], name="header_only.csv"): "header_only.csv: has no data rows",
    }
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    cases[folder] = "folder.csv: is not a file"
    junk = tmp_path / "junk.parquet"
    junk.write_text("this is not parquet")
    cases[junk] = "junk.parquet: cannot be read as Parquet"
    fake_gz = tmp_path / "fake.csv.gz"
    fake_gz.write_text("\n".join([HEADER, *GOOD_ROWS]))
    cases[fake_gz] = "fake.csv.gz: cannot be read as CSV"
    for path, message in cases.items():
        with pytest.raises(DataFileError) as err:
            read_candle_file(path, "X", M5)
        assert message in str(err.value), (path, str(err.value))
        assert "\n" not in str(err.value)


def test_a_symbol_is_required(write_csv: WriteCsv) -> None:
    with pytest.raises(DataFileError, match="no symbol given"):
        read_candle_file(write_csv(), "  ", M5)
