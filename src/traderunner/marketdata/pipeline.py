"""The guide's pipeline: fetch what a backtest needs, then backtest (``--fetch eodhd``).

:func:`open_provider` builds the configured provider the way ``data fetch`` does (EODHD with
the shared limiter and the response cache, or the offline synthetic one). :func:`fetch_needed`
fetches the missing ranges of every symbol of a job, one series at a time under a per-series
lock held across machines (:class:`~traderunner.cache.flight.SeriesLock` on the durable
Redis), so two jobs that need the same range cause one fetch: the second waits, then finds the
data stored and asks for nothing. A series fetched by a job is marked for a few minutes
(``Keys.fetched_mark``) so sibling jobs (a sweep's chunks) do not re-fetch its last sessions
either: a sweep fetches once for all its chunks.

Progress is ``progress(done, total, "fetching data (k of n requests)")``; ``total`` is
planned before the first lock is taken (the requests the store's gaps call for), so it is an
upper bound when another job fetches some of it first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from traderunner.cache.flight import SeriesLock
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import OptionError
from traderunner.marketdata.fetch import (
    ChunkedProvider,
    FetchReport,
    SymbolReport,
    _ns,
    fetch_to_store,
    missing_ranges,
)
from traderunner.marketdata.providers import Provider
from traderunner.redisdb.keys import FETCH_LOCK_TTL, FETCHED_MARK_TTL, Keys
from traderunner.store import Store

if TYPE_CHECKING:
    from traderunner.config import Settings

PROVIDERS = ("eodhd", "synthetic")
Progress = Callable[[int, int, str], None]


def check_provider(name: str | None) -> str:
    """``name`` as a provider ``--fetch`` knows (eodhd, synthetic), else OptionError."""
    key = str(name or "").strip().lower()
    if key not in PROVIDERS:
        raise OptionError(f"unknown provider {name!r}: use eodhd (or synthetic for generated data)")
    return key


@contextmanager
def open_provider(name: str, settings: Settings, timeframe: Timeframe) -> Iterator[Any]:
    """The provider ``name``: EODHD with the shared limiter and response cache, or synthetic."""
    from traderunner.errors import ConfigError

    key = check_provider(name)
    if key == "synthetic":
        from traderunner.marketdata.providers import SyntheticProvider

        yield SyntheticProvider()
        return
    from traderunner.cache import RedisResponseCache
    from traderunner.marketdata.providers.eodhd import EodhdProvider, check_timeframe
    from traderunner.ratelimit import limiter_from_settings

    check_timeframe(timeframe)
    if not settings.eodhd_token.get_secret_value().strip():
        raise ConfigError(
            "no EODHD API token: set TRADERUNNER_EODHD_TOKEN (your token from eodhd.com)"
        )
    limiter = limiter_from_settings(settings)
    responses = RedisResponseCache.from_settings(settings)
    provider = EodhdProvider(
        settings.eodhd_token,
        base_url=settings.eodhd_base_url,
        limiter=limiter,
        response_cache=responses,
        timeout=settings.eodhd_timeout,
        intraday_cost=settings.eodhd_intraday_cost,
        outage_budget=settings.eodhd_outage_budget,
    )
    try:
        yield provider
    finally:
        provider.close()
        responses.close()
        limiter.close()


def fetch_needed(
    store: Store,
    provider: ChunkedProvider | Provider,
    symbols: Sequence[str],
    timeframe: Timeframe | str,
    start: datetime,
    end: datetime,
    *,
    durable: redis.Redis,
    keys: Keys,
    progress: Progress | None = None,
    refetch_sessions: int = 2,
) -> FetchReport:
    """Fetch what the store lacks for ``symbols``, one series at a time under its lock.

    Returns the reports of every symbol as one :class:`FetchReport` (``quota_resets_at`` set
    when the daily quota ran out: the symbols after it are not fetched).
    """
    tf = Timeframe.parse(timeframe)
    names = list(dict.fromkeys(str(s).strip() for s in symbols if str(s).strip()))
    planner = provider if isinstance(provider, ChunkedProvider) else None
    total = 0
    for name in names:
        asked = missing_ranges(store, name, tf, _ns(start), _ns(end))
        total += (
            sum(len(planner.plan_ns(name, tf, lo, hi)) for lo, hi in asked)
            if planner
            else len(asked)
        )
    done = 0
    if progress is not None:
        progress(0, total, _what(0, total))
    lock = SeriesLock(durable, FETCH_LOCK_TTL * 1000)
    reports: list[SymbolReport] = []
    resets_at: float | None = None
    retry_after: float | None = None
    for name in names:
        mark = keys.fetched_mark(name, tf.value)
        with lock.hold(keys.fetch_lock(name, tf.value)):
            recent = bool(durable.exists(mark))
            base = done

            def step(k: int, n: int, _item: str, base: int = base) -> None:
                if progress is not None:
                    seen = min(base + k, max(total, base + k))
                    progress(seen, max(total, seen), _what(seen, max(total, seen)))

            report = fetch_to_store(
                store,
                provider,
                [name],
                tf,
                start,
                end,
                progress=step,
                refetch_sessions=0 if recent else refetch_sessions,
            )
            if report.symbols[0].requests:
                durable.set(mark, "1", ex=FETCHED_MARK_TTL)
        done += report.symbols[0].requests + report.symbols[0].cache_hits
        reports.extend(report.symbols)
        if report.quota_resets_at is not None or report.retry_after is not None:
            resets_at, retry_after = report.quota_resets_at, report.retry_after
            break
    return FetchReport(tf, _ns(start), _ns(end), tuple(reports), resets_at, retry_after)


def _what(done: int, total: int) -> str:
    return f"fetching data ({done} of {total} requests)"
