"""Candle files: read and fully validate a CSV or Parquet file of one symbol's bars.

Accepted files
    ``.csv``, ``.csv.gz`` (pandas) and ``.parquet``, ``.pq`` (pyarrow), chosen by suffix.
Columns (any letter case, surrounding spaces ignored)
    a time column named ``time``, ``timestamp``, ``date`` or ``datetime`` (or, in Parquet, a
    DatetimeIndex; in CSV, a first column without a header, as ``DataFrame.to_csv`` writes
    its index); ``open``, ``high``, ``low``, ``close``; ``volume`` optional (0 when absent).
Times
    the bar's *open* time, as ISO-8601 text (``2024-01-02T14:30:00Z``, an offset, or naive =
    UTC), as epoch seconds or milliseconds (told apart by size), or as Parquet timestamps.
    Times must be whole seconds, strictly increasing, and at least one bar apart.
Timeframe
    told from the times (:func:`~traderunner.domain.spacing.infer_timeframe`: the most common
    gap, so sessions, weekends, holidays and missing bars do not matter). A timeframe given
    by the caller must agree with it; when the times cannot tell (too few bars, an irregular
    spacing), one must be given.
Prices
    finite numbers > 0 with ``low <= open, close <= high``; volume >= 0.

Every problem raises :class:`~traderunner.errors.DataFileError` naming the file, the 1-based
data row (and, for CSV, the line of the file: data row 1 is line 2, under the header), what
is wrong and how to fix it. Nothing is returned unless the whole file is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from traderunner.domain.candles import CandleArrays
from traderunner.domain.spacing import KNOWN, infer_timeframe
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataFileError

TIME_COLUMNS = ("time", "timestamp", "date", "datetime")
PRICE_COLUMNS = ("open", "high", "low", "close")
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
_NS = 1_000_000_000

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def file_kind(path: Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file name; DataFileError for anything else."""
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    found = "".join(path.suffixes[-2:]) or "none"
    raise DataFileError(
        f"{path}: unknown file type (suffix {found}); use a .csv, .csv.gz, .parquet or .pq file"
    )


def read_candle_file(
    path: Path, symbol: str, timeframe: Timeframe | str | None = None
) -> CandleArrays:
    """Read and validate ``path``; the bars of ``symbol``, oldest first.

    ``timeframe`` None: told from the bar times; given: checked against them. The result's
    ``timeframe`` is the one used, ``source`` is ``"csv"`` or ``"parquet"``, ``meta["file"]``
    the path and ``meta["timeframe_inferred"]`` whether the times told the timeframe (False
    only when it was given and the times could not tell). Raises DataFileError (see the
    module docstring) for any unusable file or row, a timeframe the times contradict
    included.
    """
    path = Path(path).expanduser()
    name = str(symbol).strip()
    if not name:
        raise DataFileError(f"{path}: no symbol given for the file; name it, e.g. --symbol AAPL")
    given = None if timeframe is None else Timeframe.parse(timeframe)
    kind = file_kind(path)
    if not path.exists():
        raise DataFileError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise DataFileError(f"{path}: is not a file; give the path of a {kind} file")
    frame, time_from_index = _read_csv(path) if kind == "csv" else _read_parquet(path)
    rows = _Rows(path, kind)
    if len(frame) == 0:
        raise DataFileError(
            f"{path}: has no data rows; it needs a header line and one row per bar "
            f"(time, open, high, low, close, volume)"
        )
    columns = _match_columns(frame, path, time_from_index)
    ts = _parse_times(frame.index if time_from_index else frame[columns["time"]], rows)
    _check_order(ts, rows)
    tf, inferred = _timeframe(ts, rows, given)
    _check_spacing(ts, rows, tf)
    prices = {name: _parse_numbers(frame[columns[name]], name, rows) for name in PRICE_COLUMNS}
    if "volume" in columns:
        volume = _parse_numbers(frame[columns["volume"]], "volume", rows)
    else:
        volume = np.zeros(len(ts), dtype=np.float64)
    _check_prices(prices, volume, rows)
    return CandleArrays(
        ts=ts,
        open=prices["open"],
        high=prices["high"],
        low=prices["low"],
        close=prices["close"],
        volume=volume,
        symbol=name,
        timeframe=tf,
        source=kind,
        meta={"file": str(path), "timeframe_inferred": inferred},
    )


class _Rows:
    """Names rows the way the user sees them: data row N (and line N+1 of a CSV file)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.is_csv = kind == "csv"

    def at(self, i: int) -> str:
        return f"row {i + 1} (line {i + 2})" if self.is_csv else f"row {i + 1}"

    def error(self, mask: BoolArray, message: Callable[[int], str], fix: str) -> None:
        """Raise for the first True in ``mask``: ``<file> <row>: <message(i)>; <fix>``."""
        bad = np.flatnonzero(mask)
        if len(bad) == 0:
            return
        i = int(bad[0])
        more = f" ({len(bad)} rows like this)" if len(bad) > 1 else ""
        raise DataFileError(f"{self.path} {self.at(i)}: {message(i)}{more}; {fix}")


def _read_csv(path: Path) -> tuple[pd.DataFrame, bool]:
    try:
        # Blank lines are kept as empty rows so that row numbers stay equal to file lines.
        frame = pd.read_csv(path, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(), False
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, EOFError) as exc:
        raise DataFileError(
            f"{path}: cannot be read as CSV ({_one_line(exc)}); {_CSV_FIX}"
        ) from None
    # Trailing blank lines are not rows anyone meant to write.
    filled = np.flatnonzero(frame.notna().any(axis=1).to_numpy())
    frame = frame.iloc[: int(filled[-1]) + 1] if len(filled) else frame.iloc[:0]
    return frame, False


_CSV_FIX = "save it as comma-separated text with a header line (UTF-8, optionally gzipped)"


def _read_parquet(path: Path) -> tuple[pd.DataFrame, bool]:
    import pyarrow.parquet as pq

    try:
        # Without Arrow's thread pools (see store.tables.decode: pool threads alive at exit
        # can abort the process after its work is done).
        table = pq.ParquetFile(path, pre_buffer=False).read(use_threads=False)
        frame = table.to_pandas(use_threads=False)
    except Exception as exc:  # pyarrow raises many types (ArrowInvalid, OSError, ...)
        raise DataFileError(
            f"{path}: cannot be read as Parquet ({_one_line(exc)}); write it with "
            "pandas.DataFrame.to_parquet or pyarrow"
        ) from None
    return frame, isinstance(frame.index, pd.DatetimeIndex)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _match_columns(frame: pd.DataFrame, path: Path, time_from_index: bool) -> dict[str, Any]:
    by_name: dict[str, Any] = {}
    for column in frame.columns:
        by_name.setdefault(str(column).strip().lower(), column)
    found: dict[str, Any] = {}
    if not time_from_index:
        for candidate in TIME_COLUMNS:
            if candidate in by_name:
                found["time"] = by_name[candidate]
                break
        else:
            # A first column without a header is an index written by DataFrame.to_csv (the
            # layout of pandas' and backtesting.py's sample files): it holds the times.
            first = frame.columns[0] if len(frame.columns) else None
            if isinstance(first, str) and first.startswith("Unnamed: 0"):
                found["time"] = first
    for name in (*PRICE_COLUMNS, "volume"):
        if name in by_name:
            found[name] = by_name[name]
    needed = [] if time_from_index else ["time"]
    missing = [n for n in (*needed, *PRICE_COLUMNS) if n not in found]
    if missing:
        shown = ", ".join(str(c) for c in frame.columns) or "none"
        what = [
            "a time column (time/timestamp/date/datetime)" if n == "time" else n for n in missing
        ]
        raise DataFileError(
            f"{path}: missing column(s) {', '.join(what)}; found: {shown}; needed: a time "
            "column (time, timestamp, date or datetime), open, high, low, close and "
            "optionally volume, in any letter case"
        )
    return found


def _parse_times(raw: pd.Series[Any] | pd.Index[Any], rows: _Rows) -> IntArray:
    values = pd.Series(raw, copy=False).reset_index(drop=True)
    n = len(values)
    fix = "use ISO-8601 such as 2024-01-02T14:30:00Z (naive = UTC) or epoch seconds/milliseconds"
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        index = pd.DatetimeIndex(values)
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        missing = np.asarray(index.isna())
        rows.error(missing, lambda i: "the time is empty", fix)
        return np.asarray(index.as_unit("ns").asi8, dtype=np.int64).copy()

    empty_fix = "fill in the bar's open time or delete the row"
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        rows.error(np.isnan(numbers), lambda i: "the time is empty", empty_fix)
        return _epoch_to_ns(numbers, rows)
    text = values.astype("string").str.strip()
    empty = np.asarray(text.isna() | (text == ""), dtype=bool)
    rows.error(empty, lambda i: "the time is empty", empty_fix)
    if _looks_numeric(str(text.iloc[0])):
        # Epoch numbers in a text column (some rows are not numbers): name the first of those.
        numbers_or_nan = pd.to_numeric(text, errors="coerce")
        bad_number = np.asarray(numbers_or_nan.isna(), dtype=bool)
        rows.error(bad_number, lambda i: f"time {text.iloc[i]!r} is not a number", fix)
        return _epoch_to_ns(numbers_or_nan.to_numpy(dtype=np.float64), rows)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = np.asarray(parsed.isna(), dtype=bool)
    rows.error(bad, lambda i: f"time {text.iloc[i]!r} is not a date/time", fix)
    result = np.asarray(pd.DatetimeIndex(parsed).as_unit("ns").asi8, dtype=np.int64).copy()
    assert len(result) == n
    return result


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _epoch_to_ns(numbers: FloatArray, rows: _Rows) -> IntArray:
    rows.error(
        ~np.isfinite(numbers),
        lambda i: f"time {numbers[i]} is not a number of seconds",
        "use epoch seconds or milliseconds, or ISO-8601 text",
    )
    biggest = float(np.max(np.abs(numbers))) if len(numbers) else 0.0
    # 1e11 seconds is the year 5138, 1e11 ms is 1973: sizes tell the units apart.
    scale = _NS if biggest < 1e11 else 1_000_000 if biggest < 1e14 else 1_000
    if biggest >= 1e17:
        scale = 1
    return np.round(numbers * scale).astype(np.int64)


def _check_order(ts: IntArray, rows: _Rows) -> None:
    rows.error(
        ts % _NS != 0,
        lambda i: f"time {_iso(ts[i], fraction=True)} has a fraction of a second",
        "bar open times must be whole seconds",
    )
    if len(ts) < 2:
        return
    step = np.diff(ts)
    same = np.concatenate([[False], step == 0])
    rows.error(
        same,
        lambda i: f"has the same time {_iso(ts[i])} as {rows.at(i - 1)}",
        "remove the duplicate row",
    )
    earlier = np.concatenate([[False], step < 0])
    rows.error(
        earlier,
        lambda i: f"time {_iso(ts[i])} is earlier than {rows.at(i - 1)} ({_iso(ts[i - 1])})",
        "times must be strictly increasing: sort the file by time",
    )


def _timeframe(ts: IntArray, rows: _Rows, given: Timeframe | None) -> tuple[Timeframe, bool]:
    """The timeframe the times show (checked against ``given``), or ``given`` if they cannot
    tell; and whether the times told it."""
    spacing = infer_timeframe(ts)
    found = spacing.timeframe
    if found is None:
        if given is not None:
            return given, False
        raise DataFileError(
            f"{rows.path}: cannot tell the timeframe from the bar times: {spacing.problem}; "
            f"pass it with --timeframe ({KNOWN}) if you know it"
        )
    if given is not None and given is not found:
        raise DataFileError(
            f"{rows.path}: the bars are {found.value} ({spacing.describe()}), not "
            f"{given.value} as --timeframe says: drop --timeframe, or pass --timeframe "
            f"{found.value}"
        )
    return found, True


def _check_spacing(ts: IntArray, rows: _Rows, tf: Timeframe) -> None:
    if len(ts) < 2:
        return
    step = np.diff(ts)
    # A daily series may shift by an hour at daylight-saving changes; intraday bars may not.
    min_gap = tf.seconds * _NS if tf.is_intraday else 12 * 3600 * _NS
    close = np.concatenate([[False], step < min_gap])
    rows.error(
        close,
        lambda i: (
            f"time {_iso(ts[i])} is only {int(ts[i] - ts[i - 1]) // _NS} s after "
            f"{rows.at(i - 1)}, less than one {tf.value} bar"
        ),
        "import it with the timeframe the file really has (--timeframe)",
    )


_PRICE_FIX = "every bar needs open, high, low and close numbers: fill the value or delete the row"


def _parse_numbers(column: pd.Series[Any], name: str, rows: _Rows) -> FloatArray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.ascontiguousarray(values)
    bad = ~np.isfinite(values)
    if bad.any():
        original = column.reset_index(drop=True)

        def message(i: int) -> str:
            shown = original.iloc[i]
            if pd.isna(shown) or str(shown).strip() == "":
                return f"{name} is empty"
            return f"{name} {str(shown).strip()!r} is not a number"

        fix = "put 0 if the volume is unknown" if name == "volume" else _PRICE_FIX
        rows.error(bad, message, fix)
    return values


def _check_prices(prices: dict[str, FloatArray], volume: FloatArray, rows: _Rows) -> None:
    o, h, low, c = (prices[name] for name in PRICE_COLUMNS)
    for name in PRICE_COLUMNS:
        _check_positive(prices[name], name, rows)
    fix = "every bar needs low <= open, close <= high: correct or delete the row"
    rows.error(h < low, lambda i: f"high {h[i]:g} is below low {low[i]:g}", fix)
    rows.error(h < o, lambda i: f"high {h[i]:g} is below open {o[i]:g}", fix)
    rows.error(h < c, lambda i: f"high {h[i]:g} is below close {c[i]:g}", fix)
    rows.error(low > o, lambda i: f"low {low[i]:g} is above open {o[i]:g}", fix)
    rows.error(low > c, lambda i: f"low {low[i]:g} is above close {c[i]:g}", fix)
    rows.error(
        volume < 0,
        lambda i: f"volume {volume[i]:g} is negative",
        "volume must be 0 or more",
    )


def _check_positive(values: FloatArray, name: str, rows: _Rows) -> None:
    rows.error(
        values <= 0,
        lambda i: f"{name} {values[i]:g} is not positive",
        "prices must be greater than 0",
    )


def _iso(ns: int | np.integer[Any], fraction: bool = False) -> str:
    stamp = pd.Timestamp(int(ns), unit="ns", tz="UTC")
    if fraction:
        return stamp.isoformat().replace("+00:00", "Z")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
