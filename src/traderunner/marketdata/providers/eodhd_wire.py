"""EODHD's wire format: the request value, symbol and timeframe checks, and response parsing.

Pure functions of bytes and values (no HTTP, no token): :class:`EodhdProvider` in ``eodhd.py``
sends the requests and hands each body to :func:`parse_response`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError, ProviderResponseError

SOURCE = "eodhd"
NS = 1_000_000_000
DAY_S = 86_400
# (EODHD interval, most days one request may span) per timeframe it serves intraday.
INTRADAY: dict[Timeframe, tuple[str, int]] = {
    Timeframe.M1: ("1m", 120),
    Timeframe.M5: ("5m", 600),
    Timeframe.H1: ("1h", 7200),
}
EOD_INTERVAL = "d"
_COLUMNS = ("open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-^=&]*(\.[A-Za-z0-9_\-]+)*\.[A-Za-z0-9]+$")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ns(value: datetime) -> int:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * DAY_S + delta.seconds) * NS + delta.microseconds * 1000


@dataclass(frozen=True, slots=True)
class EodhdRequest:
    """One API request: bars of ``symbol`` with open time in ``[start_ns, end_ns]``.

    ``endpoint`` is ``intraday`` or ``eod``; ``interval`` ``1m``/``5m``/``1h`` or ``d``.
    Holds no token: safe to print, log and hash.
    """

    endpoint: str
    symbol: str
    interval: str
    start_ns: int
    end_ns: int
    cost: int

    def params(self) -> dict[str, str]:
        """The query parameters, without the token."""
        if self.endpoint == "eod":
            first = datetime.fromtimestamp(self.start_ns // NS, tz=UTC).date().isoformat()
            last = datetime.fromtimestamp(self.end_ns // NS, tz=UTC).date().isoformat()
            return {"from": first, "to": last, "fmt": "json"}
        return {
            "interval": self.interval,
            "from": str(self.start_ns // NS),
            "to": str(self.end_ns // NS),
            "fmt": "json",
        }

    @property
    def cache_key(self) -> str:
        """sha256 of (provider, endpoint, symbol, interval, from, to); never the token."""
        p = self.params()
        text = "|".join((SOURCE, self.endpoint, self.symbol, self.interval, p["from"], p["to"]))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """``EODHD intraday AAPL.US 5m 2024-01-02T00:00:00Z..2024-03-01T23:59:59Z``."""
        interval = "" if self.endpoint == "eod" else f" {self.interval}"
        span = f"{_iso(self.start_ns)}..{_iso(self.end_ns)}"
        return f"EODHD {self.endpoint} {self.symbol}{interval} {span}"


@dataclass(frozen=True, slots=True)
class FetchedChunk:
    """What one request brought: its bars (inside the request's range), and how.

    ``attempts`` counts the HTTP requests sent for it (retries included; 0 on a cache hit).
    ``skipped`` counts bars left out because EODHD sent them with a null price (thinly traded
    symbols); ``warning`` is the free plan's ``warning`` element ("Data is limited by one
    year"), the data beside it kept; ``empty`` is True when EODHD answered 404 for a range it
    has no bars in (the ticker exists; see ``EodhdProvider``).
    """

    request: EodhdRequest
    candles: CandleArrays
    from_cache: bool
    attempts: int
    skipped: int = 0
    warning: str | None = None
    empty: bool = False
    adjusted_close: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """One response read: its valid bars, how many null-price bars were left out, a warning.

    ``adjusted_close`` (end-of-day responses): EODHD's split- and dividend-adjusted close of
    each bar, aligned with ``candles`` (NaN where absent); None for intraday.
    """

    candles: CandleArrays
    skipped: int = 0
    warning: str | None = None
    adjusted_close: np.ndarray | None = None


def check_symbol(symbol: str) -> str:
    """``symbol`` stripped, if it has EODHD's CODE.EXCHANGE form, else DataRangeError."""
    text = str(symbol).strip()
    if not _SYMBOL.match(text):
        raise DataRangeError(
            f"symbol {text!r} is not an EODHD ticker: use CODE.EXCHANGE, e.g. AAPL.US, "
            "BMW.XETRA or EURUSD.FOREX"
        )
    return text


def check_timeframe(timeframe: Timeframe | str) -> Timeframe:
    """The timeframe if EODHD serves it (M1, M5, H1, D1), else DataRangeError."""
    tf = Timeframe.parse(timeframe)
    if tf is not Timeframe.D1 and tf not in INTRADAY:
        raise DataRangeError(
            f"EODHD does not serve {tf.value} bars: fetch M1, M5, H1 or D1 "
            "(fetch M5 or H1 and resample for other bar sizes)"
        )
    return tf


def parse_response(request: EodhdRequest, body: bytes, scrub: Callable[[str], str]) -> Parsed:
    """Validated bars of one response, inside the request's range, sorted and unique.

    A bar with a null (or missing) open, high, low or close is left out and counted (EODHD
    sends such bars for thinly traded symbols); a null volume is 0. A ``warning`` element
    (EODHD's free plan appends ``{"warning": "Data is limited by one year ..."}``, or puts the
    key on a bar) is kept as the warning, never read as a bar. ``scrub`` makes server text
    safe to show (see ``EodhdProvider._scrub``).
    """
    what = request.describe()
    try:
        rows = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        start = scrub(body[:60].decode("utf-8", "replace"))
        raise ProviderResponseError(
            f"{what}: EODHD answered something that is not JSON (starting {start!r}): "
            "retry later; if it persists, check TRADERUNNER_EODHD_BASE_URL"
        ) from None
    if isinstance(rows, dict) and "warning" in rows and len(rows) == 1:
        rows = [rows]  # a free plan's answer with nothing but its warning
    if isinstance(rows, dict):
        message = rows.get("error") or rows.get("errors") or rows.get("message") or rows
        text = scrub(str(message))
        raise ProviderResponseError(f"{what}: EODHD answered an error instead of bars: {text}")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ProviderResponseError(
            f"{what}: EODHD answered JSON that is not a list of bars: the API may have "
            "changed; report it"
        )
    tf = Timeframe.D1 if request.endpoint == "eod" else _timeframe_of(request.interval)
    stamp = "date" if request.endpoint == "eod" else "timestamp"
    warnings = [scrub(str(r["warning"])) for r in rows if r.get("warning")]
    rows = [r for r in rows if not ("warning" in r and r.get(stamp) is None)]
    priced = [r for r in rows if all(r.get(n) is not None for n in _PRICES)]
    skipped = len(rows) - len(priced)
    rows = priced
    try:
        ts = _timestamps(request, rows)
        cols = {name: np.array([r.get(name) for r in rows], dtype=np.float64) for name in _PRICES}
        volume = np.array([r.get("volume") or 0 for r in rows], dtype=np.float64)
        adjusted = np.array(
            [np.nan if r.get("adjusted_close") is None else r["adjusted_close"] for r in rows],
            dtype=np.float64,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderResponseError(
            f"{what}: EODHD sent a bar with a missing or non-numeric field ({exc}): report it"
        ) from None
    cols["volume"] = volume
    idx = _keep_index(ts, request.start_ns, request.end_ns)
    candles = _bars_at(idx, ts, cols, request.symbol, tf)
    _validate(what, candles)
    adjusted_close = adjusted[idx] if request.endpoint == "eod" else None
    return Parsed(candles, skipped, "; ".join(dict.fromkeys(warnings)) or None, adjusted_close)


def _timeframe_of(interval: str) -> Timeframe:
    return next(tf for tf, (name, _) in INTRADAY.items() if name == interval)


def _timestamps(request: EodhdRequest, rows: list[dict[str, Any]]) -> np.ndarray:
    if request.endpoint == "eod":
        days = np.array([str(r["date"])[:10] for r in rows], dtype="datetime64[D]")
        return days.astype("datetime64[ns]").astype(np.int64)
    seconds = np.array([int(r["timestamp"]) for r in rows], dtype=np.int64)
    return seconds * NS


def _validate(what: str, c: CandleArrays) -> None:
    checks = (
        (~np.isfinite(c.open) | ~np.isfinite(c.high), "a missing or non-finite price"),
        (~np.isfinite(c.low) | ~np.isfinite(c.close), "a missing or non-finite price"),
        (~np.isfinite(c.volume) | (c.volume < 0), "a negative or non-finite volume"),
        (c.low > c.high, "low above high"),
        ((c.open < c.low) | (c.open > c.high), "open outside low..high"),
        ((c.close < c.low) | (c.close > c.high), "close outside low..high"),
    )
    for bad, problem in checks:
        rows = np.flatnonzero(bad)
        if len(rows):
            i = int(rows[0])
            raise ProviderResponseError(
                f"{what}: the bar at {_iso(int(c.ts[i]))} has {problem} (open {c.open[i]}, "
                f"high {c.high[i]}, low {c.low[i]}, close {c.close[i]}, volume "
                f"{c.volume[i]}): EODHD sent inconsistent data; retry later or report it"
            )


def merge_chunks(chunks: list[CandleArrays], symbol: str, tf: Timeframe) -> CandleArrays:
    """Chunks concatenated, sorted, the last copy of each timestamp kept."""
    ts = np.concatenate([np.zeros(0, dtype=np.int64), *(c.ts for c in chunks)])
    cols = {
        name: np.concatenate([np.zeros(0), *(getattr(c, name) for c in chunks)])
        for name in _COLUMNS
    }
    return _unique_bars(ts, cols, symbol, tf)


def _unique_bars(
    ts: np.ndarray,
    cols: dict[str, np.ndarray],
    symbol: str,
    tf: Timeframe,
    lo: int | None = None,
    hi: int | None = None,
) -> CandleArrays:
    """Bars sorted by time, the last copy of a repeated timestamp kept, only ``[lo, hi]``."""
    return _bars_at(_keep_index(ts, lo, hi), ts, cols, symbol, tf)


def _keep_index(ts: np.ndarray, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Positions of the bars to keep, by time: the last copy of a timestamp, in ``[lo, hi]``."""
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]
    keep = np.ones(len(ts_sorted), dtype=np.bool_)
    keep[:-1] = ts_sorted[1:] != ts_sorted[:-1]
    if lo is not None:
        keep &= ts_sorted >= lo
    if hi is not None:
        keep &= ts_sorted <= hi
    return order[keep]


def _bars_at(
    idx: np.ndarray, ts: np.ndarray, cols: dict[str, np.ndarray], symbol: str, tf: Timeframe
) -> CandleArrays:
    o, h, lw, c, v = (np.ascontiguousarray(cols[n][idx]) for n in _COLUMNS)
    return CandleArrays(np.ascontiguousarray(ts[idx]), o, h, lw, c, v, symbol, tf, SOURCE)
