"""The EODHD provider: intraday and end-of-day bars over EODHD's HTTP JSON API.

Endpoints (``base_url`` is ``Settings.eodhd_base_url``, by default ``https://eodhd.com/api``)::

    GET {base}/intraday/{CODE.EXCHANGE}?interval=1m|5m|1h&from=UNIX&to=UNIX&fmt=json
    GET {base}/eod/{CODE.EXCHANGE}?from=YYYY-MM-DD&to=YYYY-MM-DD&fmt=json

Timeframes: M1 -> ``1m``, M5 -> ``5m``, H1 -> ``1h``, D1 -> the end-of-day endpoint. M15, M30
and H4 are refused (EODHD does not serve them; we do not aggregate silently). One intraday
request may span at most 120 days (1m), 600 days (5m) or 7200 days (1h), so longer ranges are
split into consecutive, non-overlapping requests. An intraday request costs
``intraday_cost`` calls against the day's quota, an end-of-day request one; the minute quota
counts HTTP requests (EODHD: 1,000 a minute), and a failed request costs no call (its cost is
refunded to the limiter).

Contracts

* Bars: open time in ``[start, end]`` (UTC; naive datetimes are UTC), merged across requests,
  de-duplicated (the last copy of a timestamp wins), sorted, ``source="eodhd"``. D1 bars are
  stamped 00:00 UTC of their date and carry the raw (not split-adjusted) OHLC.
* Every row is validated (finite prices, ``low <= open, close <= high``, volume >= 0); a bad
  row raises ProviderResponseError naming the request and the row. Bars with a null price
  are left out and counted (``FetchedChunk.skipped``); the free plan's ``warning`` element is
  kept as ``FetchedChunk.warning`` with the data beside it.
* Errors: 401/403 -> ProviderAuthError; a 403 that names the plan -> ProviderPlanError;
  402 (the day's calls are spent) -> the day quota is marked spent in the shared limiter
  until the next midnight GMT, for every process, and QuotaSpentError (``resets_at``) is
  raised; 404 whose text names the ticker ("Ticker Not Found") -> DataRangeError naming the
  symbol; any other 404 is EODHD's "no data for the ticker or date range" and yields an empty
  chunk (``empty=True``) so the chunks after it still run; 429 -> retried with exponential
  backoff honouring ``Retry-After`` (RateLimitedError when retries run out or the wait is
  longer than ``max_wait``); 5xx and dropped connections (maintenance windows, 502 around
  05:30-06:00 GMT) -> retried with back-off growing to ``outage_max_wait`` until
  ``outage_budget`` seconds of waiting are used, then ProviderResponseError;
  malformed JSON or an error object in a 200 -> ProviderResponseError; an unusable base URL
  -> ProviderError.
* The API token never appears in a message, a log line or an exception: it travels only as
  the ``api_token`` query parameter, messages name requests by endpoint, symbol, interval and
  range, and a filter masks ``api_token=`` in the ``httpx`` logger's lines.
* ``limiter.acquire(cost, deadline=limit_wait)`` is called before every HTTP request
  (retries included: each one is a call against the quota). With a
  ``response_cache``, a cached response is used without any request or limiter cost; only
  responses whose range ended more than a day ago are stored (recent data may still change).
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from traderunner.domain.candles import CandleArrays
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import (
    DataRangeError,
    ProviderAuthError,
    ProviderError,
    ProviderPlanError,
    ProviderResponseError,
    QuotaSpentError,
    RateLimitedError,
)
from traderunner.marketdata.providers.eodhd_wire import (
    DAY_S,
    EOD_INTERVAL,
    INTRADAY,
    NS,
    SOURCE,
    EodhdRequest,
    FetchedChunk,
    Parsed,
    _iso,
    _ns,
    check_symbol,
    check_timeframe,
    merge_chunks,
    parse_response,
)

if TYPE_CHECKING:
    from traderunner.marketdata.providers import ResponseCache
    from traderunner.ratelimit import RateLimiter


# Data whose range ended less than this long ago may still change, so it is not cached.
SETTLE = timedelta(days=1)
_SETTLE_NS = int(SETTLE.total_seconds()) * NS
_TOKEN_PARAM = re.compile(r"(api_token=)[^&\s\"']+")
_PLAN_WORDS = ("plan", "subscription", "upgrade", "payment", "not available", "not included")
_TOKEN_WORDS = ("unauthenticated", "unauthorized", "api key", "api_token", "token")
_NO_TOKEN = "EODHD refused the API token: set TRADERUNNER_EODHD_TOKEN"
log = logging.getLogger(__name__)


class _MaskTokens(logging.Filter):
    """Masks ``api_token=...`` in a record (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _TOKEN_PARAM.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_MASK = _MaskTokens()


def _install_log_mask() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _MASK not in logger.filters:
            logger.addFilter(_MASK)


class EodhdProvider:
    """The EODHD provider (see the module docstring for the contract).

    The provider owns the httpx client it creates (close it with :meth:`close` or use it as a
    context manager); a client passed in stays the caller's. Retries wait ``backoff * 2**n``
    seconds (plus up to 10 % jitter), or ``Retry-After`` when longer, never more than
    ``max_wait``. The limiter is given ``limit_wait`` seconds to grant a request (None: as long
    as it takes), so a spent daily quota fails fast with RateLimitedError instead of blocking
    for hours. Server errors and dropped connections are retried for up to ``outage_budget``
    seconds of waiting (back-off doubling from ``backoff`` to ``outage_max_wait``), which rides
    out a maintenance window. ``sleep`` is what waits between retries (``time.sleep``;
    injectable so a caller can observe the waits).
    """

    name = SOURCE

    def __init__(
        self,
        token: SecretStr | str,
        *,
        base_url: str,
        limiter: RateLimiter | None = None,
        response_cache: ResponseCache | None = None,
        client: httpx.Client | None = None,
        timeout: float = 30,
        max_retries: int = 4,
        intraday_cost: int = 5,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        limit_wait: float | None = 120.0,
        outage_budget: float = 1800.0,
        outage_max_wait: float = 120.0,
        daily_quota: str = "day",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(str(token))
        if not secret.get_secret_value().strip():
            raise ProviderAuthError("no EODHD API token: set TRADERUNNER_EODHD_TOKEN")
        self._token = SecretStr(secret.get_secret_value().strip())
        self.base_url = _check_base_url(base_url)
        self._limiter = limiter
        self._cache = response_cache
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._max_retries = max(0, int(max_retries))
        self._intraday_cost = int(intraday_cost)
        self._backoff = float(backoff)
        self._max_wait = float(max_wait)
        self._limit_wait = limit_wait
        self._outage_budget = float(outage_budget)
        self._outage_max_wait = float(outage_max_wait)
        self._daily_quota = daily_quota
        self._sleep = sleep
        _install_log_mask()

    def __repr__(self) -> str:
        return f"EodhdProvider(base_url={self.base_url!r})"

    def __enter__(self) -> EodhdProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the httpx client if the provider created it."""
        if self._own_client:
            self._client.close()

    # ------------------------------------------------------------------ planning
    def plan(
        self, symbol: str, timeframe: Timeframe | str, start: datetime, end: datetime
    ) -> list[EodhdRequest]:
        """The requests that cover ``[start, end]``, oldest first (none for an empty range)."""
        return self.plan_ns(symbol, timeframe, _ns(start), _ns(end))

    def plan_ns(
        self, symbol: str, timeframe: Timeframe | str, start_ns: int, end_ns: int
    ) -> list[EodhdRequest]:
        """:meth:`plan` with bounds as UTC nanoseconds (both inclusive)."""
        name = check_symbol(symbol)
        tf = check_timeframe(timeframe)
        if start_ns > end_ns:
            raise DataRangeError(
                f"start {_iso(start_ns)} is after end {_iso(end_ns)}: swap --from and --to"
            )
        first_s, last_s = -(-start_ns // NS), end_ns // NS  # whole seconds inside the range
        if tf is Timeframe.D1:
            first_day, last_day = -(-first_s // DAY_S), last_s // DAY_S
            if first_day > last_day:
                return []
            return [
                EodhdRequest(
                    "eod", name, EOD_INTERVAL, first_day * DAY_S * NS, last_day * DAY_S * NS, 1
                )
            ]
        interval, max_days = INTRADAY[tf]
        span = max_days * DAY_S - 1  # to - from of one request stays under the API's limit
        out: list[EodhdRequest] = []
        lo = first_s
        while lo <= last_s:
            hi = min(lo + span, last_s)
            out.append(
                EodhdRequest("intraday", name, interval, lo * NS, hi * NS, self._intraday_cost)
            )
            lo = hi + 1
        return out

    # ------------------------------------------------------------------- fetching
    def fetch(
        self, symbol: str, timeframe: Timeframe | str, start: datetime, end: datetime
    ) -> CandleArrays:
        """All bars in ``[start, end]``, merged from every request (the Provider contract)."""
        tf = check_timeframe(timeframe)
        chunks = [c.candles for c in self.fetch_chunks(symbol, tf, start, end)]
        return merge_chunks(chunks, check_symbol(symbol), tf)

    def fetch_chunks(
        self, symbol: str, timeframe: Timeframe | str, start: datetime, end: datetime
    ) -> Iterator[FetchedChunk]:
        """One :class:`FetchedChunk` per planned request, oldest first, as each arrives.

        Bad input raises at the call; an error of a request raises when the iteration gets
        to it, after every earlier chunk was yielded.
        """
        return self.fetch_requests(self.plan(symbol, timeframe, start, end))

    def fetch_requests(self, requests: list[EodhdRequest]) -> Iterator[FetchedChunk]:
        """Run planned requests in order, yielding each one's chunk as it arrives."""
        for request in requests:
            yield self.fetch_request(request)

    def fetch_request(self, request: EodhdRequest) -> FetchedChunk:
        """One request: from the response cache when there, else from the API."""
        cached = self._cache_get(request)
        if cached is not None:
            try:
                return _chunk(request, parse_response(request, cached, self._scrub), True, 0)
            except ProviderResponseError:
                log.warning("ignoring an unreadable cached response for %s", request.describe())
        body, attempts = self._send(request)
        if body is None:  # 404: nothing in this range
            empty = merge_chunks([], request.symbol, check_timeframe(_tf_of(request)))
            return FetchedChunk(request, empty, False, attempts, empty=True)
        parsed = parse_response(request, body, self._scrub)
        if request.end_ns + _SETTLE_NS <= _ns(datetime.now(UTC)):
            self._cache_put(request, body)
        return _chunk(request, parsed, False, attempts)

    def _cache_get(self, request: EodhdRequest) -> bytes | None:
        if self._cache is None:
            return None
        try:
            return self._cache.get(request.cache_key)
        except Exception as exc:  # a cache failure is a miss, never a failed fetch
            log.warning("response cache read failed (%s); asking EODHD", type(exc).__name__)
            return None

    def _cache_put(self, request: EodhdRequest, body: bytes) -> None:
        if self._cache is None:
            return
        try:
            self._cache.put(request.cache_key, body)
        except Exception as exc:  # the data arrived; not caching it only costs a later call
            log.warning("response cache write failed (%s)", type(exc).__name__)

    # ------------------------------------------------------------------------ HTTP
    def _send(self, request: EodhdRequest) -> tuple[bytes | None, int]:
        """The body of a 200 (None for a 404 "no data in this range") and the attempts made."""
        url = f"{self.base_url}/{request.endpoint}/{quote(request.symbol, safe='.')}"
        params = {**request.params(), "api_token": self._token.get_secret_value()}
        what = request.describe()
        attempt = 0
        waited = 0.0  # seconds slept for server errors and dropped connections
        while True:
            attempt += 1
            if self._limiter is not None:
                self._limiter.acquire(request.cost, deadline=self._limit_wait)
            try:
                response = self._client.get(url, params=params)
            except httpx.ConnectError as exc:
                self._refund(request)
                raise ProviderError(_connect_message(self.base_url, exc)) from None
            except httpx.TransportError as exc:
                self._refund(request)
                problem = f"{type(exc).__name__} ({self._scrub(str(exc)) or 'no detail'})"
                if waited >= self._outage_budget - 1e-9:
                    raise ProviderResponseError(
                        f"{what} failed {attempt} times over {waited:.0f} s, last with "
                        f"{problem}: EODHD or the network is unwell, retry later (or raise "
                        "TRADERUNNER_EODHD_OUTAGE_BUDGET)"
                    ) from None
                waited += self._outage_wait(what, problem, attempt, waited)
                continue
            status = response.status_code
            if status == 200:
                return response.content, attempt
            self._refund(request)  # EODHD charges no call for a failed request
            if status == 402:
                raise self._spent(request, response.text)
            if status == 404 and not self._unknown_ticker(response.text):
                log.info("%s: EODHD has no bars there (HTTP 404)", what)
                return None, attempt
            if status == 429:
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if attempt > self._max_retries or (retry_after or 0) > self._max_wait:
                    wait = f"; EODHD asks to wait {retry_after:g} s" if retry_after else ""
                    raise RateLimitedError(
                        f"{what}: EODHD rate limit reached after {attempt} tries{wait}: "
                        "wait, or lower TRADERUNNER_EODHD_CALLS_PER_MINUTE",
                        retry_after,
                    )
                self._wait(what, "HTTP 429", attempt, retry_after)
                continue
            if status >= 500:
                if waited >= self._outage_budget - 1e-9:
                    raise ProviderResponseError(
                        f"{what} failed {attempt} times over {waited:.0f} s, last with HTTP "
                        f"{status}: EODHD has a server problem or a maintenance window, retry "
                        "later (or raise TRADERUNNER_EODHD_OUTAGE_BUDGET)"
                    )
                waited += self._outage_wait(what, f"HTTP {status}", attempt, waited)
                continue
            raise self._client_error(request, status, response.text)

    def _refund(self, request: EodhdRequest) -> None:
        if self._limiter is not None:
            self._limiter.refund(request.cost)

    def _spent(self, request: EodhdRequest, text: str) -> QuotaSpentError:
        """HTTP 402: the day's calls are spent; every process stops until midnight GMT."""
        now = datetime.now(UTC)
        reset = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        if self._limiter is not None and self._daily_quota in {
            q.name for q in self._limiter.quotas
        }:
            self._limiter.mark_spent(self._daily_quota, reset.timestamp())
        detail = self._scrub(text)
        said = f" (EODHD said: {detail})" if detail else ""
        return QuotaSpentError(
            f"{request.describe()}: the EODHD daily call quota is spent (HTTP 402){said}; it "
            f"resets at {reset:%Y-%m-%d %H:%M} UTC (midnight GMT): run the same fetch again "
            "then to go on from here",
            resets_at=reset.timestamp(),
        )

    @staticmethod
    def _unknown_ticker(text: str) -> bool:
        """A 404 that names the ticker (or an HTML page: a wrong path) is not an empty range."""
        lowered = " ".join(text.lower().split())
        return "<html" in lowered or any(
            words in lowered for words in ("ticker not found", "symbol not found", "unknown")
        )

    def _outage_wait(self, what: str, problem: str, attempt: int, waited: float) -> float:
        """Sleep before retrying a server error; the seconds slept (within the budget)."""
        backoff = self._backoff * 2 ** (attempt - 1) * (1 + 0.1 * random.random())
        delay = min(self._outage_max_wait, backoff, max(0.0, self._outage_budget - waited))
        log.warning(
            "%s answered %s; retry %d in %.2f s (%.0f of %.0f s of outage budget used)",
            what,
            problem,
            attempt,
            delay,
            waited,
            self._outage_budget,
        )
        self._sleep(delay)
        return max(delay, 1e-9)

    def _wait(self, what: str, problem: str, attempt: int, retry_after: float | None) -> None:
        backoff = self._backoff * 2 ** (attempt - 1) * (1 + 0.1 * random.random())
        delay = min(self._max_wait, max(backoff, retry_after or 0.0))
        log.warning(
            "%s answered %s; retry %d/%d in %.2f s",
            what,
            problem,
            attempt,
            self._max_retries,
            delay,
        )
        self._sleep(delay)

    def _client_error(self, request: EodhdRequest, status: int, text: str) -> Exception:
        detail = self._scrub(text)
        said = f" (EODHD said: {detail})" if detail else ""
        lowered = detail.lower()
        if status == 401 or (status == 403 and not any(w in lowered for w in _PLAN_WORDS)):
            return ProviderAuthError(f"{_NO_TOKEN} (HTTP {status} for {request.describe()})")
        if status == 403:
            return ProviderPlanError(
                f"{request.describe()}: the EODHD plan does not include this data "
                f"(HTTP {status}){said}: upgrade the plan or ask for less"
            )
        if 300 <= status < 400:
            return ProviderError(
                f"{request.describe()} was redirected (HTTP {status}): set "
                "TRADERUNNER_EODHD_BASE_URL to the API's own address, e.g. https://eodhd.com/api"
            )
        if status == 404 and "<html" in lowered and "ticker" not in lowered:
            return ProviderError(
                f"{request.describe()}: {self.base_url} has no such API path (HTTP 404 page): "
                "check TRADERUNNER_EODHD_BASE_URL, e.g. https://eodhd.com/api"
            )
        if status == 404:
            return DataRangeError(
                f"EODHD does not know the symbol {request.symbol!r} (HTTP 404): use "
                "CODE.EXCHANGE as EODHD lists it, e.g. AAPL.US"
            )
        return ProviderResponseError(
            f"{request.describe()} was refused with HTTP {status}{said}: the request does not "
            "fit the API any more; report it"
        )

    def _scrub(self, text: str) -> str:
        """Server text made safe to show: one line, short, with no trace of the token."""
        token = self._token.get_secret_value()
        line = " ".join(str(text).split())
        line = _TOKEN_PARAM.sub(r"\1***", line.replace(token, "***") if token else line)
        return line[:200]


def _chunk(request: EodhdRequest, parsed: Parsed, from_cache: bool, attempts: int) -> FetchedChunk:
    if parsed.skipped:
        log.info("%s: %d bar(s) with a null price left out", request.describe(), parsed.skipped)
    return FetchedChunk(
        request,
        parsed.candles,
        from_cache,
        attempts,
        parsed.skipped,
        parsed.warning,
        adjusted_close=parsed.adjusted_close,
    )


def _tf_of(request: EodhdRequest) -> Timeframe:
    if request.endpoint == "eod":
        return Timeframe.D1
    return next(tf for tf, (name, _) in INTRADAY.items() if name == request.interval)


def _check_base_url(base_url: str) -> str:
    text = str(base_url).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(
            f"the EODHD base URL {text!r} is not an http(s) URL: set "
            "TRADERUNNER_EODHD_BASE_URL to e.g. https://eodhd.com/api"
        )
    if parts.query or parts.fragment:
        raise ProviderError(
            f"the EODHD base URL {parts.scheme}://{parts.netloc}{parts.path} must not carry a "
            "query or fragment: set TRADERUNNER_EODHD_BASE_URL to e.g. https://eodhd.com/api"
        )
    return text


def _connect_message(base_url: str, exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return (
                f"cannot resolve the host of the EODHD base URL {base_url}: check "
                "TRADERUNNER_EODHD_BASE_URL and the network"
            )
        seen = seen.__cause__ or seen.__context__
    reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
    return (
        f"cannot reach EODHD at {base_url} ({reason}): check TRADERUNNER_EODHD_BASE_URL "
        "and the network"
    )


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


__all__ = [
    "DAY_S",
    "EOD_INTERVAL",
    "INTRADAY",
    "NS",
    "SOURCE",
    "EodhdProvider",
    "EodhdRequest",
    "FetchedChunk",
    "check_symbol",
    "check_timeframe",
]
