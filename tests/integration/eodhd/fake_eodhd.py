"""A real HTTP server on 127.0.0.1 that speaks EODHD's intraday and end-of-day JSON.

It serves deterministic bars (the synthetic model of ``traderunner.marketdata``, so a test can
compute the expected bars itself), counts every request, enforces the API's per-request span
limits (HTTP 422, as EODHD does) and can be told to misbehave:

* ``script(...)``: canned responses served, in order, before normal service resumes (401,
  402, 403, 404, 429 with Retry-After, 500, malformed JSON, an error object in a 200 ...);
* ``cut_after = N``: after N data responses every request is cut (connection closed without
  an answer, or ``cut_status`` if set);
* ``overlap_bars``: serve that many extra bars beyond each end of the asked range (a lax API);
* ``duplicate_rows``: repeat every tenth row of a response;
* ``missing_days``: dates (UTC) that have no bars; ``bad_bar``: break one bar's OHLC.

And it behaves as the real API does (EODHD's intraday, end-of-day and API-limits pages):

* ``null_every = N``: every Nth bar comes with null prices and volume (thinly traded symbols);
* ``daily_calls = N``: the day's quota in *calls* (an intraday request costs 5, an end-of-day
  request 1, a failed request nothing); once spent, every request gets HTTP 402;
  ``calls_used`` is what it charged;
* ``per_minute = N``: at most N HTTP *requests* in any 60 s (whatever they cost), else 429;
* ``free_plan_from``: end-of-day data starts at that date and a ``warning`` element is
  appended when more was asked ("Data is limited by one year ...");
* ``volume_bump``: added to every bar's volume (EODHD revises volume after the close);
* ``HISTORY_START``: 5-minute and 1-hour bars start in October 2020; a range holding no bars
  answers HTTP 404 "no data found" (an unknown ticker answers 404 "Ticker Not Found.");
* ``maintenance(n)``: the next n requests get 502 (the 05:30-06:00 GMT maintenance window);
* ``splits[symbol] = (day, ratio)`` and ``dividends[symbol] = (ex_day, fraction)``: end-of-day
  OHLC are raw (``ratio`` times the synthetic prices before the split), volume is
  split-adjusted and ``adjusted_close`` is the synthetic close times ``1 - fraction`` before
  the ex-day (EODHD's end-of-day page: raw prices, adjusted close for splits and dividends).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from traderunner.domain.timeframe import Timeframe
from traderunner.marketdata.providers.synthetic import synthetic_candles

NS = 1_000_000_000
INTERVALS = {"1m": (Timeframe.M1, 120), "5m": (Timeframe.M5, 600), "1h": (Timeframe.H1, 7200)}
HISTORY_START = {"5m": date(2020, 10, 1), "1h": date(2020, 10, 1)}
FREE_PLAN_WARNING = "Data is limited by one year as you have free subscription"
NO_DATA = b'{"errors":"No data found for the ticker or date range"}'
QUOTA_SPENT = b'{"error":"Payment Required: API limit used up, upgrade or wait for the reset"}'
MAINTENANCE = b"<html><body><h1>502 Bad Gateway</h1>maintenance</body></html>"


@dataclass(frozen=True)
class Canned:
    """One scripted response."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it (the token is checked, never recorded)."""

    endpoint: str
    symbol: str
    params: dict[str, str]
    token_ok: bool
    status: int

    @property
    def span_s(self) -> int:
        return int(self.params["to"]) - int(self.params["from"])


def expected_bars(symbol: str, tf: Timeframe, start_ns: int, end_ns: int) -> Any:
    """The bars the server holds for ``symbol`` with open time in ``[start_ns, end_ns]``."""
    lo = datetime.fromtimestamp(start_ns / NS, tz=UTC)
    hi = datetime.fromtimestamp(end_ns / NS, tz=UTC)
    return synthetic_candles(symbol, tf, lo, hi).between(start_ns, end_ns)


class FakeEodhd:
    """The server; ``url`` is the base URL to give the provider (``.../api``)."""

    def __init__(self, token: str, symbols: tuple[str, ...] = ("AAPL.US", "TSLA.US")) -> None:
        self.token = token
        self.symbols = set(symbols)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.reset()

    # ------------------------------------------------------------------ control
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api"

    def start(self) -> FakeEodhd:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.seen: list[Seen] = []
            self._script: deque[Canned] = deque()
            self.cut_after: int | None = None
            self.cut_status: int | None = None
            self.overlap_bars = 0
            self.duplicate_rows = False
            self.missing_days: set[date] = set()
            self.bad_bar: str | None = None
            self.served = 0
            self.null_every: int | None = None
            self.daily_calls: int | None = None
            self.calls_used = 0
            self.per_minute: int | None = None
            self._minute: deque[float] = deque()
            self.free_plan_from: date | None = None
            self.volume_bump = 0.0
            self.delay_s = 0.0  # seconds each data answer takes (to see a fetch in flight)
            self.splits: dict[str, tuple[date, float]] = {}
            self.dividends: dict[str, tuple[date, float]] = {}

    def script(self, *responses: Canned) -> None:
        with self._lock:
            self._script.extend(responses)

    def maintenance(self, n: int) -> None:
        """The next ``n`` requests get 502 (a maintenance window)."""
        self.script(*[Canned(502, MAINTENANCE, {"Content-Type": "text/html"})] * n)

    def requests(self, endpoint: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if endpoint is None or s.endpoint == endpoint]

    # ------------------------------------------------------------------ serving
    def _respond(self, path: str, query: dict[str, str]) -> Canned | None:
        """The response to one request; None = cut the connection."""
        if self.delay_s:
            time.sleep(self.delay_s)
        parts = [unquote(p) for p in path.split("/") if p]
        token_ok = query.pop("api_token", None) == self.token
        endpoint = parts[1] if len(parts) == 3 and parts[0] == "api" else "?"
        symbol = parts[2] if len(parts) == 3 else ""
        with self._lock:
            now = time.monotonic()
            while self._minute and self._minute[0] <= now - 60:
                self._minute.popleft()
            self._minute.append(now)
            cost = 5 if endpoint == "intraday" else 1
            if self.per_minute is not None and len(self._minute) > self.per_minute:
                canned: Canned | None = Canned(429, b'{"error":"Too Many Requests"}')
            elif self.daily_calls is not None and self.calls_used + cost > self.daily_calls:
                canned = Canned(402, QUOTA_SPENT)
            elif self._script:
                canned = self._script.popleft()
            elif self.cut_after is not None and self.served >= self.cut_after:
                canned = None if self.cut_status is None else Canned(self.cut_status, b"cut")
            else:
                canned = self._serve(endpoint, symbol, query, token_ok)
                if canned.status == 200:
                    self.served += 1
            if canned is not None and canned.status == 200:
                self.calls_used += cost  # a failed request costs no call
            status = 0 if canned is None else canned.status
            self.seen.append(Seen(endpoint, symbol, dict(query), token_ok, status))
            return canned

    def _serve(self, endpoint: str, symbol: str, q: dict[str, str], token_ok: bool) -> Canned:
        if endpoint not in ("intraday", "eod"):
            return Canned(404, b"<html><body>404 Not Found</body></html>")
        if not token_ok:
            return Canned(401, b'{"message":"Unauthenticated"}')
        if symbol not in self.symbols:
            return Canned(404, b"Ticker Not Found.")
        warning = False
        if "from" not in q or "to" not in q or q.get("fmt") != "json":
            return Canned(422, b'{"errors":{"from":["from, to and fmt=json are required"]}}')
        if endpoint == "eod":
            first = datetime.fromisoformat(q["from"]).replace(tzinfo=UTC)
            last = datetime.fromisoformat(q["to"]).replace(tzinfo=UTC)
            tf, lo, hi = Timeframe.D1, _ns(first), _ns(last)
            if self.free_plan_from is not None and first.date() < self.free_plan_from:
                floor = datetime(*self.free_plan_from.timetuple()[:3], tzinfo=UTC)
                lo, warning = _ns(floor), True
        else:
            if q.get("interval") not in INTERVALS:
                return Canned(422, b'{"errors":{"interval":["use 1m, 5m or 1h"]}}')
            tf, max_days = INTERVALS[q["interval"]]
            lo, hi = int(q["from"]) * NS, int(q["to"]) * NS
            if hi - lo > max_days * 86_400 * NS:
                error = {"errors": {"from": [f"Max period length is {max_days} days"]}}
                return Canned(422, json.dumps(error).encode())
            begins = HISTORY_START.get(q["interval"])
            if begins is not None:
                lo = max(lo, _ns(datetime(*begins.timetuple()[:3], tzinfo=UTC)))
        step = tf.seconds * NS
        rows: list[dict[str, Any]] = []
        if lo <= hi:
            bars = expected_bars(
                symbol, tf, lo - self.overlap_bars * step, hi + self.overlap_bars * step
            )
            rows = self._rows(endpoint, bars, symbol)
        if not rows and not warning:
            return Canned(404, NO_DATA)
        if warning:
            rows.append({"warning": FREE_PLAN_WARNING})
        return Canned(200, json.dumps(rows).encode())

    def _rows(self, endpoint: str, bars: Any, symbol: str = "") -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for i in range(len(bars)):
            ts = int(bars.ts[i]) // NS
            when = datetime.fromtimestamp(ts, tz=UTC)
            if when.date() in self.missing_days:
                continue
            prices = {
                "open": float(bars.open[i]),
                "high": float(bars.high[i]),
                "low": float(bars.low[i]),
                "close": float(bars.close[i]),
            }
            volume = round(float(bars.volume[i]) + self.volume_bump)
            if endpoint == "eod":
                adjusted = prices["close"]
                split = self.splits.get(symbol)
                if split is not None and when.date() < split[0]:
                    prices = {k: v * split[1] for k, v in prices.items()}  # raw: before the split
                dividend = self.dividends.get(symbol)
                if dividend is not None and when.date() < dividend[0]:
                    adjusted *= 1 - dividend[1]
                row = {"date": when.date().isoformat(), **prices}
                row |= {"adjusted_close": adjusted, "volume": volume}
            else:
                row = {"timestamp": ts, "gmtoffset": 0}
                row |= {"datetime": when.strftime("%Y-%m-%d %H:%M:%S"), **prices}
                row["volume"] = volume
            if self.null_every and i % self.null_every == self.null_every - 1:
                row |= dict.fromkeys(("open", "high", "low", "close", "volume"))
            rows.append(row)
            if self.duplicate_rows and i % 10 == 0:
                rows.append(dict(row))
        if self.bad_bar and rows:
            middle = rows[len(rows) // 2]
            if self.bad_bar == "low_above_high":
                middle["low"] = middle["high"] + 1.0
            else:  # a price that is there but not a number (JSON NaN): refused, not skipped
                middle["close"] = float("nan")
        return rows

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                canned = fake._respond(split.path, query)
                if canned is None:
                    self.close_connection = True
                    return
                self.send_response(canned.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(canned.body)))
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(canned.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests read fake.seen

        return Handler


def _ns(value: datetime) -> int:
    return int(value.timestamp()) * NS


def bars_equal(a: Any, b: Any) -> bool:
    """Same timestamps and OHLC (volume as the server rounds it)."""
    return (
        len(a) == len(b)
        and bool(np.array_equal(a.ts, b.ts))
        and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in ("open", "high", "low"))
        and bool(np.array_equal(a.close, b.close))
        and bool(np.array_equal(np.round(a.volume), np.round(b.volume)))
    )
