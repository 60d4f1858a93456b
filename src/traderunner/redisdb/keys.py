"""The whole Redis schema: every key, stream and channel traderunner uses, with its TTL.

One prefix (``Settings.redis_prefix``, default ``tr:``) in front of everything, including
Celery's own keys (kombu ``global_keyprefix``), so several deployments can share one server and
``SCAN tr:*`` shows all of ours. Build keys only through :class:`Keys`; no f-string key anywhere
else, and Lua scripts receive keys through ``KEYS[]``.

``docs/redis-keys.md`` is generated from :data:`SCHEMA` (``python -m traderunner.redisdb.keys``).
"""

from __future__ import annotations

from dataclasses import dataclass

# TTLs in seconds, beside the keys they belong to. None = no TTL (durable by design).
JOB_STATE_TTL = 7 * 86400  # job hash: progress and state, mirrored in the store
JOB_HEARTBEAT_TTL = 15  # a running job refreshes it every few seconds
JOB_CANCEL_TTL = 7 * 86400  # cancel flag, checked between chunks
RECONCILER_LOCK_TTL = 30  # one reconciler pass at a time across processes
# A rate-limit window key expires one quota window after its last grant; windows are capped
# here so no limiter key can outlive a month.
RATELIMIT_MAX_TTL = 31 * 86400

# Cache role: everything there can be rebuilt from the store, and the server evicts LRU.
LATEST_CANDLE_MAX_TTL = 86400  # one bar: the timeframe's seconds (60 for M1 ... 86400 for D1)
CANDLE_SERIES_TTL = 3600  # default of TRADERUNNER_CACHE_SERIES_TTL
STRATEGY_CONFIG_TTL = 3600  # default of TRADERUNNER_CACHE_CONFIG_TTL
PROVIDER_RESPONSE_TTL = 86400  # default of TRADERUNNER_CACHE_RESPONSE_TTL
CACHE_FILL_LOCK_TTL = 15  # one loader per missing key: 2 s (a candle), 15 s refreshed (a series)
CACHE_STATS_TTL = 7 * 86400  # refreshed by every flush of a process's counters

# -- the bus (bus/): one stream per topic, its dead letters, its Pub/Sub copy ---------------
# Streams have no TTL: retention is a length, trimmed approximately (XADD MAXLEN ~) by every
# publish, because the durable server runs noeviction and a stream that grew without bound
# would end up refusing the writes of every job. A consumer down for longer than the stream
# holds loses the oldest entries (counted as "trimmed" by the consumer when it claims them).
BUS_STREAM_MAXLEN = 100_000  # entries per topic: default of TRADERUNNER_BUS_STREAM_MAXLEN
BUS_DEAD_MAXLEN = 10_000  # dead letters kept per topic, trimmed the same way
# Consumer groups live inside their stream, so their names need no prefix: one group per
# consuming service, named after it.
TRADER_GROUP = "trader"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One entry of the schema, for docs and the schema test."""

    builder: str
    pattern: str
    type: str
    ttl: int | None
    role: str  # "durable" or "cache"
    doc: str


SCHEMA: tuple[KeySpec, ...] = (
    KeySpec(
        "job",
        "job:{job_id}",
        "hash",
        JOB_STATE_TTL,
        "durable",
        "state, progress, attempts, worker, timestamps, error of one job",
    ),
    KeySpec(
        "job_heartbeat",
        "job:{job_id}:hb",
        "string",
        JOB_HEARTBEAT_TTL,
        "durable",
        "present while a worker runs the job; expiry means the worker died",
    ),
    KeySpec(
        "job_cancel",
        "job:{job_id}:cancel",
        "string",
        JOB_CANCEL_TTL,
        "durable",
        "set by cancel; queued jobs never start, running ones stop at the next chunk",
    ),
    KeySpec(
        "job_events",
        "events:job:{job_id}",
        "channel",
        None,
        "durable",
        "PUBLISH of every progress/state change of one job",
    ),
    KeySpec(
        "jobs_events",
        "events:jobs",
        "channel",
        None,
        "durable",
        "PUBLISH of every job's state changes (dashboards, `jobs follow`)",
    ),
    KeySpec(
        "reconciler_lock",
        "lock:reconciler",
        "string",
        RECONCILER_LOCK_TTL,
        "durable",
        "one reconciler pass at a time across all processes",
    ),
    KeySpec(
        "ratelimit",
        "ratelimit:{name}",
        "prefix",
        None,
        "durable",
        "namespace of one cluster-wide rate limiter (limits' RedisStorage key_prefix); "
        "holds only its ratelimit_quota keys",
    ),
    KeySpec(
        "ratelimit_quota",
        "ratelimit:{name}:{quota}",
        "list",
        RATELIMIT_MAX_TTL,
        "durable",
        "moving window of one quota: a timestamp per unit of cost granted, trimmed to the "
        "limit; TTL = the quota's window (at most the value shown), refreshed by every grant",
    ),
    KeySpec(
        "latest_candle",
        "candle:{symbol}:{timeframe}",
        "string",
        LATEST_CANDLE_MAX_TTL,
        "cache",
        "newest bar of one series (binary: ts + OHLCV + source); TTL one bar (the timeframe's "
        "seconds, at most the value shown); also kept in process, invalidated by tracking",
    ),
    KeySpec(
        "latest_candles",
        "candle:",
        "prefix",
        None,
        "cache",
        "CLIENT TRACKING BCAST prefix of the latest candles (in-process tier invalidation)",
    ),
    KeySpec(
        "candle_series",
        "series:{symbol}:{timeframe}:v{version}",
        "string",
        CANDLE_SERIES_TTL,
        "cache",
        "a whole stored series as binary columns, keyed by the store's series version (an "
        "import makes a new version, so a new key; old ones expire)",
    ),
    KeySpec(
        "strategy_config",
        "config:{name}",
        "string",
        STRATEGY_CONFIG_TTL,
        "cache",
        "one strategy config as JSON; also kept in process, invalidated by tracking",
    ),
    KeySpec(
        "strategy_configs",
        "config:",
        "prefix",
        None,
        "cache",
        "CLIENT TRACKING BCAST prefix of the strategy configs (in-process tier invalidation)",
    ),
    KeySpec(
        "provider_response",
        "response:{digest}",
        "string",
        PROVIDER_RESPONSE_TTL,
        "cache",
        "a raw provider response (zlib) by the SHA-256 of the provider's request key",
    ),
    KeySpec(
        "cache_fill_lock",
        "fill:{key}",
        "string",
        CACHE_FILL_LOCK_TTL,
        "cache",
        "held by the one process that loads a missing cache key from the store (stampede "
        "guard; the others wait for the key); 2 s for a candle, the value shown for a series "
        "(refreshed while it loads, so a dead loader's lock soon expires)",
    ),
    KeySpec(
        "cache_stats",
        "cache:stats",
        "hash",
        CACHE_STATS_TTL,
        "cache",
        "hits, misses, errors, local hits and store loads per kind, summed over processes",
    ),
    # -- the bus ----------------------------------------------------------------------------
    KeySpec(
        "bus_stream",
        "bus:{topic}",
        "stream",
        None,
        "durable",
        "the durable stream of one topic (`signals`, `candles.{timeframe}`): one JSON envelope "
        "per entry (field `envelope`), read by one consumer group per service (`trader`); "
        "trimmed to about TRADERUNNER_BUS_STREAM_MAXLEN entries (default 100000)",
    ),
    KeySpec(
        "bus_dead",
        "bus:{topic}:dead",
        "stream",
        None,
        "durable",
        "dead letters of one topic: the original entry, the reason (bad_json, bad_envelope, "
        "unknown_type, wrong_version, wrong_topic, handler_failed, undeliverable), the group "
        "and the delivery count; trimmed to about 10000 entries",
    ),
    KeySpec(
        "bus_channel",
        "bus:{topic}:live",
        "channel",
        None,
        "durable",
        "PUBLISH of every envelope of one topic, for live screens (`signals tail`, the "
        "dashboard): ephemeral, a subscriber loses what is sent while it is away",
    ),
    KeySpec(
        "celery",
        "celery… (kombu global_keyprefix)",
        "various",
        None,
        "durable",
        "Celery's queues, unacked index and results, all under the same prefix",
    ),
)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builders bound to one prefix. Pass one instance down; never build keys by hand."""

    prefix: str = "tr:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def job_heartbeat(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:hb"

    def job_cancel(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:cancel"

    def job_events(self, job_id: str) -> str:
        return f"{self.prefix}events:job:{job_id}"

    def jobs_events(self) -> str:
        return f"{self.prefix}events:jobs"

    def reconciler_lock(self) -> str:
        return f"{self.prefix}lock:reconciler"

    def ratelimit(self, name: str) -> str:
        """Namespace of the limiter ``name``; its quota keys are ``{this}:{quota}``."""
        return f"{self.prefix}ratelimit:{name}"

    def ratelimit_quota(self, name: str, quota: str) -> str:
        return f"{self.ratelimit(name)}:{quota}"

    def latest_candle(self, symbol: str, timeframe: str) -> str:
        return f"{self.prefix}candle:{symbol}:{timeframe}"

    def latest_candles(self) -> str:
        """Prefix of every latest-candle key (for CLIENT TRACKING BCAST PREFIX)."""
        return f"{self.prefix}candle:"

    def candle_series(self, symbol: str, timeframe: str, version: int | str) -> str:
        return f"{self.prefix}series:{symbol}:{timeframe}:v{version}"

    def strategy_config(self, name: str) -> str:
        return f"{self.prefix}config:{name}"

    def strategy_configs(self) -> str:
        """Prefix of every strategy-config key (for CLIENT TRACKING BCAST PREFIX)."""
        return f"{self.prefix}config:"

    def provider_response(self, digest: str) -> str:
        return f"{self.prefix}response:{digest}"

    def cache_fill_lock(self, key: str) -> str:
        """The fill lock of the cache key ``key`` (given with or without the prefix)."""
        return f"{self.prefix}fill:{key.removeprefix(self.prefix)}"

    def cache_stats(self) -> str:
        return f"{self.prefix}cache:stats"

    # -- the bus (bus/) -------------------------------------------------------------------------

    def bus_stream(self, topic: str) -> str:
        return f"{self.prefix}bus:{topic}"

    def bus_dead(self, topic: str) -> str:
        return f"{self.bus_stream(topic)}:dead"

    def bus_channel(self, topic: str) -> str:
        """The Pub/Sub channel of ``topic`` (a glob such as ``candles.*`` for PSUBSCRIBE)."""
        return f"{self.bus_stream(topic)}:live"

    def celery(self) -> str:
        """The kombu ``global_keyprefix`` for Celery's own keys."""
        return self.prefix

    def everything(self) -> str:
        """SCAN pattern matching every key of this deployment."""
        return f"{self.prefix}*"


def markdown_table() -> str:
    """The schema as a Markdown table (for docs/redis-keys.md)."""
    lines = [
        "| builder | key (after the prefix) | type | TTL (s) | instance | what |",
        "|---|---|---|---|---|---|",
    ]
    for spec in SCHEMA:
        ttl = "none" if spec.ttl is None else str(spec.ttl)
        lines.append(
            f"| `{spec.builder}` | `{spec.pattern}` | {spec.type} | {ttl} | {spec.role} | "
            f"{spec.doc} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(), end="")
