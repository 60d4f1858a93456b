"""Resumable fetching into the store: ask a provider only for what the store lacks.

:func:`fetch_to_store` works symbol by symbol. For each, it compares ``[start, end]`` with the
stored series and asks only for

* the part before the first stored bar and the part after the last one, when a session (a
  bar) could lie there, and
* runs of missing sessions inside (found by :func:`~traderunner.marketdata.gaps.find_gaps`) of
  at least ``min_hole_sessions`` weekdays: a single missing weekday is almost always an
  exchange holiday, which no provider can fill, and asking again every run would cost quota.
  Missing bars inside a session are left alone for the same reason (``data gaps`` shows them).

A resumed fetch also asks again for the last ``refetch_sessions`` stored sessions (default 2)
when they are recent (the last stored bar less than ``REVISION_WINDOW`` before now): EODHD's
bars are final only two to three hours after the close and end-of-day volume is revised later,
so the provisional bars a fetch stored are overwritten rather than kept forever.

Each chunk is written (``store.candles.upsert``) as soon as it arrives, so an interrupted or
partly failed fetch keeps everything that arrived, and running the same fetch again asks only
for the rest. The end of the range is clipped to now. Errors are reported, not raised: the
:class:`FetchReport` says per symbol what was written, how many requests were made and which
ranges are still missing and why, how many null-price bars were left out and what warnings the
provider gave. A refused token, a spent rate limit, an unreachable API or an unreachable Redis
(the limiter's) stop the whole fetch (every later symbol would fail the same way); a spent
daily quota (EODHD's 402) also sets ``FetchReport.quota_resets_at``, when the same fetch can
go on. An unknown symbol, a plan refusal or a bad response stop only that symbol; an empty
chunk (no bars in its range) is counted and the chunks after it still run. Bad
input (a malformed symbol, an unserved timeframe, start after end) raises before any request
is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from traderunner.domain.candles import CandleArrays
from traderunner.domain.sessions import US_EQUITY, SessionHours
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import (
    DataRangeError,
    ProviderAuthError,
    ProviderError,
    ProviderPlanError,
    ProviderResponseError,
    QuotaSpentError,
    RateLimitedError,
    RedisError,
)
from traderunner.marketdata.gaps import expected_sessions, find_gaps, session_bounds
from traderunner.marketdata.providers import Provider
from traderunner.store import Store

NS = 1_000_000_000
DAY_NS = 86_400 * NS
# Stored bars older than this are final: only a series whose last bar is newer is re-fetched.
REVISION_WINDOW_NS = 7 * DAY_NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Progress = Callable[[int, int, str], None]


class _Request(Protocol):
    @property
    def start_ns(self) -> int: ...

    @property
    def end_ns(self) -> int: ...


class _Chunk(Protocol):
    @property
    def request(self) -> Any: ...

    @property
    def candles(self) -> CandleArrays: ...

    @property
    def from_cache(self) -> bool: ...


@runtime_checkable
class ChunkedProvider(Protocol):
    """A provider that plans its requests and runs them one at a time (EodhdProvider)."""

    name: str

    def plan_ns(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int
    ) -> Sequence[Any]: ...

    def fetch_request(self, request: Any) -> _Chunk: ...


@dataclass(frozen=True, slots=True)
class MissingRange:
    """Bars in ``[start_ns, end_ns]`` (UTC ns) that were asked for and did not arrive."""

    start_ns: int
    end_ns: int
    reason: str


@dataclass(frozen=True, slots=True)
class SymbolReport:
    """One symbol's fetch: ranges asked for, bars written, requests made, what is missing.

    ``requests`` counts requests that reached the provider (one per chunk; retries inside a
    request are the provider's business); ``cache_hits`` those served by the response cache;
    ``skipped_bars`` bars left out for a null price; ``empty_chunks`` requests whose range held
    no bars (EODHD's 404 for an empty range); ``warnings`` what the provider warned about.
    """

    symbol: str
    timeframe: Timeframe
    asked: tuple[tuple[int, int], ...]
    bars_written: int
    requests: int
    cache_hits: int
    missing: tuple[MissingRange, ...]
    error: str | None
    skipped_bars: int = 0
    empty_chunks: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FetchReport:
    """The whole fetch: one :class:`SymbolReport` per symbol, in input order.

    ``quota_resets_at`` (Unix seconds) is set when the provider's daily quota ran out: the
    fetch stopped there and the same fetch goes on after that moment.
    """

    timeframe: Timeframe
    start_ns: int
    end_ns: int
    symbols: tuple[SymbolReport, ...]
    quota_resets_at: float | None = None
    # seconds until a rate limit that stopped the fetch could grant again (None: none did)
    retry_after: float | None = None

    @property
    def skipped_bars(self) -> int:
        return sum(s.skipped_bars for s in self.symbols)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for s in self.symbols for w in s.warnings))

    @property
    def ok(self) -> bool:
        """True when nothing asked for is missing."""
        return all(s.ok for s in self.symbols)

    @property
    def bars_written(self) -> int:
        return sum(s.bars_written for s in self.symbols)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.symbols)

    @property
    def cache_hits(self) -> int:
        return sum(s.cache_hits for s in self.symbols)


@dataclass(frozen=True, slots=True)
class _WholeRange:
    start_ns: int
    end_ns: int
    symbol: str
    timeframe: Timeframe


@dataclass(frozen=True, slots=True)
class _WholeChunk:
    request: _WholeRange
    candles: CandleArrays
    from_cache: bool = False


class _OneRequestPerRange:
    """Adapts a plain :class:`Provider` (one ``fetch`` per missing range) to the planner."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.name = provider.name

    def plan_ns(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int
    ) -> list[_WholeRange]:
        return [_WholeRange(start_ns, end_ns, symbol, timeframe)]

    def fetch_request(self, request: _WholeRange) -> _WholeChunk:
        candles = self._provider.fetch(
            request.symbol,
            request.timeframe,
            _dt(request.start_ns),
            _dt(request.end_ns),
        )
        return _WholeChunk(request, candles.between(request.start_ns, request.end_ns))


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS, tz=UTC)


def _ns(value: datetime) -> int:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def missing_ranges(
    store: Store,
    symbol: str,
    timeframe: Timeframe,
    start_ns: int,
    end_ns: int,
    *,
    sessions: SessionHours = US_EQUITY,
    min_hole_sessions: int = 2,
    refetch_sessions: int = 0,
    now_ns: int | None = None,
) -> list[tuple[int, int]]:
    """The parts of ``[start_ns, end_ns]`` the store lacks for ``symbol`` (see module doc).

    With ``refetch_sessions`` > 0 and a last stored bar newer than ``REVISION_WINDOW_NS``
    before ``now_ns``, the range also covers that many of the last stored sessions.
    """
    tf = Timeframe.parse(timeframe)
    step = tf.seconds * NS

    def could_hold_bars(lo: int, hi: int) -> bool:
        return lo <= hi and len(expected_sessions(lo, hi, tf, sessions)) > 0

    info = store.candles.series(symbol, tf)
    if info is None:
        return [(start_ns, end_ns)] if could_hold_bars(start_ns, end_ns) else []
    out: list[tuple[int, int]] = []
    # The neighbours of the stored bars are one bar away: a range ending on the session's
    # last bar then has nothing to ask for after it.
    before = (start_ns, min(end_ns, info.first_ns - step))
    if could_hold_bars(*before):
        out.append(before)
    lo, hi = max(start_ns, info.first_ns), min(end_ns, info.last_ns)
    if lo <= hi:
        try:
            stored = store.candles.load(symbol, tf, lo, hi)
        except DataRangeError:  # no bars at all between lo and hi
            stored = _empty(symbol, tf)
        report = find_gaps(stored, tf, sessions, start_ns=lo, end_ns=hi)
        for first, last in report.missing_runs():
            if int(np.busday_count(first, last)) + 1 < min_hole_sessions:
                continue
            days = (first - _EPOCH.date()).days, (last - _EPOCH.date()).days
            opens, closes = session_bounds(days, tf, sessions)
            out.append((max(lo, int(opens[0])), min(hi, int(closes[1]) - 1)))
    after = (max(start_ns, info.last_ns + step), end_ns)
    redo = _refetch_from(store, symbol, tf, info.last_ns, refetch_sessions, now_ns)
    if redo is not None and end_ns >= info.last_ns:
        after = (max(start_ns, redo), end_ns)
    if could_hold_bars(*after):
        out.append(after)
    return _merge_ranges(out)


def _refetch_from(
    store: Store, symbol: str, tf: Timeframe, last_ns: int, sessions: int, now_ns: int | None
) -> int | None:
    """The first stored bar of the last ``sessions`` stored (UTC) days, if they may change."""
    if sessions <= 0:
        return None
    now = now_ns if now_ns is not None else _ns(datetime.now(UTC))
    if last_ns < now - REVISION_WINDOW_NS:
        return None
    lo = last_ns - (sessions + 10) * DAY_NS  # enough calendar days to hold that many sessions
    try:
        recent = store.candles.load(symbol, tf, lo, last_ns)
    except DataRangeError:
        return None
    days = recent.ts // DAY_NS
    distinct = np.unique(days)
    if not len(distinct):
        return None
    first_day = distinct[max(0, len(distinct) - sessions)]
    return int(recent.ts[np.searchsorted(days, first_day)])


def _empty(symbol: str, tf: Timeframe) -> CandleArrays:
    f = np.zeros(0, dtype=np.float64)
    return CandleArrays(np.zeros(0, dtype=np.int64), f, f, f, f, f, symbol, tf)


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping or touching (within a second) ranges joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + NS:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _stops_everything(exc: Exception) -> bool:
    """Errors every later request would repeat: a refused token, a spent quota, no API."""
    if isinstance(exc, ProviderAuthError | RateLimitedError | RedisError):
        return True
    return isinstance(exc, ProviderError) and not isinstance(
        exc, ProviderPlanError | ProviderResponseError
    )


def fetch_to_store(
    store: Store,
    provider: ChunkedProvider | Provider,
    symbols: Sequence[str],
    timeframe: Timeframe | str,
    start: datetime,
    end: datetime,
    *,
    progress: Progress | None = None,
    sessions: SessionHours = US_EQUITY,
    min_hole_sessions: int = 2,
    refetch_sessions: int = 2,
    now: datetime | None = None,
) -> FetchReport:
    """Fetch what the store lacks of ``symbols`` in ``[start, end]`` (see the module doc).

    ``progress(done, total, item)`` is called before the first request and after each one
    (``total`` = every planned request). ``now`` (default: the clock) clips the end and
    decides whether the last stored sessions are recent enough to re-fetch
    (``refetch_sessions``, see the module doc).
    Raises only for bad input (before any request) and for store failures.
    """
    tf = Timeframe.parse(timeframe)
    names = list(dict.fromkeys(str(s).strip() for s in symbols if str(s).strip()))
    if not names:
        raise DataRangeError("no symbols to fetch: pass at least one, e.g. AAPL.US")
    start_ns = _ns(start)
    now_ns = _ns(now or datetime.now(UTC))
    end_ns = min(_ns(end), now_ns)
    if start_ns > _ns(end):
        raise DataRangeError(
            f"start {start.isoformat()} is after end {end.isoformat()}: swap --from and --to"
        )
    runner: ChunkedProvider = (
        provider if isinstance(provider, ChunkedProvider) else _OneRequestPerRange(provider)
    )
    # Plan everything first: bad input fails before any request, and the total is known.
    plans: list[tuple[str, list[tuple[int, int]], list[Any]]] = []
    for name in names:
        asked = missing_ranges(
            store,
            name,
            tf,
            start_ns,
            end_ns,
            sessions=sessions,
            min_hole_sessions=min_hole_sessions,
            refetch_sessions=refetch_sessions,
            now_ns=now_ns,
        )
        requests = [r for lo, hi in asked for r in runner.plan_ns(name, tf, lo, hi)]
        plans.append((name, asked, requests))
    total = sum(len(reqs) for _, _, reqs in plans)
    done = 0
    if progress is not None:
        progress(0, total, "")
    reports: list[SymbolReport] = []
    stop: str | None = None  # set by an error every later request would repeat
    resets_at: float | None = None
    retry_after: float | None = None
    for name, asked, requests in plans:
        written = sent = hits = skipped = empty = 0
        warnings: list[str] = []
        error = None if stop is None else f"not fetched: {stop}"
        failed_at = len(requests) if stop is None else 0
        if stop is None:
            for i, request in enumerate(requests):
                try:
                    chunk = runner.fetch_request(request)
                except (ProviderError, RateLimitedError, RedisError, DataRangeError) as exc:
                    sent += 1
                    error, failed_at = str(exc), i
                    if isinstance(exc, QuotaSpentError):
                        resets_at = exc.resets_at
                    if isinstance(exc, RateLimitedError):
                        retry_after = exc.retry_after if exc.retry_after is not None else 60.0
                    if _stops_everything(exc):
                        stop = error
                    break
                if chunk.from_cache:
                    hits += 1
                else:
                    sent += 1
                skipped += getattr(chunk, "skipped", 0)
                empty += int(getattr(chunk, "empty", False))
                warning = getattr(chunk, "warning", None)
                if warning and warning not in warnings:
                    warnings.append(warning)
                if len(chunk.candles):
                    written += store.candles.upsert(chunk.candles).bars
                    adjusted = getattr(chunk, "adjusted_close", None)
                    if adjusted is not None:  # EODHD's D1 bars: kept for adjusted backtests
                        store.adjusted.upsert(name, chunk.candles.ts, adjusted)
                done += 1
                if progress is not None:
                    progress(done, total, f"{name} {_dt(request.start_ns):%Y-%m-%d}")
        if failed_at < len(requests):
            done += len(requests) - failed_at  # the failed request and the skipped ones
            if progress is not None:
                progress(done, total, f"{name} failed")
        left = _merge_ranges([(r.start_ns, r.end_ns) for r in requests[failed_at:]])
        reports.append(
            SymbolReport(
                symbol=name,
                timeframe=tf,
                asked=tuple(asked),
                bars_written=written,
                requests=sent,
                cache_hits=hits,
                missing=tuple(MissingRange(lo, hi, error or "") for lo, hi in left),
                error=error,
                skipped_bars=skipped,
                empty_chunks=empty,
                warnings=tuple(warnings),
            )
        )
    return FetchReport(tf, start_ns, end_ns, tuple(reports), resets_at, retry_after)
