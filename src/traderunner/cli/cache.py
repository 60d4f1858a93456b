"""``traderunner cache stats``: what the market-data cache holds and how often it hits.

Starts nothing: with the embedded servers not running (or an external cache URL that does not
answer) it says so in one line and exits 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from traderunner.cli import common

if TYPE_CHECKING:
    import redis

    from traderunner.cache import CacheStats
    from traderunner.config import Settings

cache_app = typer.Typer(
    name="cache",
    help="The market-data cache (the cache Redis): hits, misses, memory, keys.",
    no_args_is_help=True,
)


def _cache_url(settings: Settings) -> str:
    from traderunner.errors import RedisError
    from traderunner.redisdb.connection import resolve_urls

    never_started = not (settings.redis_dir / "password").exists()
    # resolve_urls would generate the embedded password: look first, start nothing.
    if settings.embedded_redis and not settings.cache_url and never_started:
        raise RedisError(
            f"the embedded cache server is not running (never started for {settings.data_dir}): "
            "start it with 'traderunner redis start', or set TRADERUNNER_CACHE_URL"
        )
    return resolve_urls(settings).cache


def cache_client(settings: Settings, name: str) -> redis.Redis:
    """A client of the cache Redis that answered a PING; RedisError (one line) when it is not
    running or refuses us. Starts nothing."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from traderunner.errors import RedisError
    from traderunner.redisdb.connection import connect, mask_url

    url = _cache_url(settings)
    client = connect(
        url,
        name=name,
        socket_timeout=3.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except Exception as exc:
        client.close()
        kind = "refused our password" if "AUTH" in str(exc).upper() else "is not running"
        where = "embedded cache server" if settings.embedded_redis else "cache Redis"
        raise RedisError(
            f"the {where} at {mask_url(url)} {kind} ({exc}): start it with "
            "'traderunner redis start', or fix TRADERUNNER_CACHE_URL"
        ) from None
    return client


def read(settings: Settings) -> CacheStats:
    """The cache's shared stats for ``settings``; RedisError (one line) when it is down."""
    from traderunner.cache import read_stats
    from traderunner.redisdb.keys import Keys

    client = cache_client(settings, "traderunner-cache-stats")
    try:
        return read_stats(client, Keys(settings.redis_prefix), url=_cache_url(settings))
    finally:
        client.close()


@cache_app.command("stats")
def stats(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Hits (Redis and in-process), misses, errors, store loads, memory and keys."""
    found = read(common.get_state(ctx).settings)
    if json_output:
        common.print_json(found.to_dict())
        return
    from rich.table import Table

    ratio = found.hit_ratio
    bound = "unbounded" if found.maxmemory == 0 else f"{found.maxmemory / 2**20:.0f} MiB"
    summary = Table(title="market-data cache", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    for name, value in (
        ("hits (Redis)", f"{found.hits:,}"),
        ("hits (in process)", f"{found.local_hits:,}"),
        ("misses", f"{found.misses:,}"),
        ("hit ratio", "-" if ratio is None else f"{ratio:.1%}"),
        ("errors (fell back to the store)", f"{found.errors:,}"),
        ("store loads", f"{found.store_loads:,}"),
        ("keys", f"{found.keys:,}"),
        ("memory", f"{found.memory_human} of {bound} ({found.policy})"),
        ("evicted keys", f"{found.evicted_keys:,}"),
    ):
        summary.add_row(name, value)
    out = common.out_console()
    out.print(summary)
    if found.kinds:
        from traderunner.cache.stats import WHATS

        kinds = Table(title="by kind")
        kinds.add_column("kind")
        for what in WHATS:
            kinds.add_column(what.replace("_", " "), justify="right")
        for kind, counts in sorted(found.kinds.items()):
            kinds.add_row(kind, *(f"{counts.get(w, 0):,}" for w in WHATS))
        out.print(kinds)
