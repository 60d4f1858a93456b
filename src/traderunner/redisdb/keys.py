"""The whole Redis schema: every key, stream and channel traderunner uses, with its TTL.

One prefix (``Settings.redis_prefix``, default ``tr:``) in front of everything, including
Celery's own keys (kombu ``global_keyprefix``), so several deployments can share one server and
``SCAN tr:*`` shows all of ours. Each key's pattern is written once, in :data:`SCHEMA`; the
builders of :class:`Keys` format those patterns. Build keys only through :class:`Keys`; no
f-string key anywhere else, and Lua scripts (``redisdb/scripts.py``) receive keys through
``KEYS[]``. Celery's keys are built by kombu; they are listed here (and the queue lists, which
we read, have builders) so the table covers every key a deployment holds.

A TTL is either a constant here (beside the key), or a setting (``ttl_setting``: the
``Settings`` field whose value it is), or described (``ttl_text``).

``docs/redis-keys.md`` is generated from :data:`SCHEMA` (``python -m traderunner.redisdb.keys``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from traderunner.domain.jobs import Queue

# TTLs in seconds, beside the keys they belong to. TTLs that are settings live in config.py.
JOB_STATE_TTL = 7 * 86400  # job hash: progress and state, mirrored in the store
JOB_CANCEL_TTL = 7 * 86400  # cancel flag, checked between chunks
RECONCILER_LOCK_TTL = 30  # one reconciler pass at a time across processes
WORKER_TTL = 30  # a worker's advertisement, refreshed every third of it while it lives
# A rate-limit window key expires one quota window after its last grant; windows are capped
# here so no limiter key can outlive a month.
RATELIMIT_MAX_TTL = 31 * 86400
# Fetch-then-backtest jobs: one fetch per series across machines, refreshed while it runs.
FETCH_LOCK_TTL = 60
FETCHED_MARK_TTL = 600  # a series fetched this recently is not re-fetched by a sibling job

# Dashboard sessions: server-side, in the durable Redis (losing one logs its user out).
SESSION_TTL = 3600  # default of TRADERUNNER_DASHBOARD_SESSION_TTL; sliding, refreshed per request
SESSION_MAX_AGE = 12 * 3600  # default of TRADERUNNER_DASHBOARD_SESSION_MAX_AGE
USER_SESSIONS_TTL = SESSION_MAX_AGE + SESSION_TTL  # no session of the index outlives it

# Cache role: everything there can be rebuilt from the store, and the server evicts LRU.
LATEST_FILL_LOCK_TTL = 2  # one loader per missing latest candle
CACHE_FILL_LOCK_TTL = 15  # one loader per missing series, refreshed while it loads
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

# -- the trader (trader/) ------------------------------------------------------------------
POSITIONS_SNAPSHOT_TTL = 7 * 86400  # rewritten by every bar the trader steps; cache only


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One entry of the schema: the pattern (after the prefix) its builder formats."""

    builder: str
    pattern: str
    type: str
    role: str  # "durable" or "cache"
    doc: str
    ttl: int | None = None  # seconds, when a constant sets it
    ttl_setting: str = ""  # the Settings field that sets it
    ttl_text: str = ""  # how it is set, when neither


SCHEMA: tuple[KeySpec, ...] = (
    KeySpec(
        "job",
        "job:{job_id}",
        "hash",
        "durable",
        "state, progress, attempts, worker, timestamps, error of one job",
        ttl=JOB_STATE_TTL,
    ),
    KeySpec(
        "job_heartbeat",
        "job:{job_id}:hb",
        "string",
        "durable",
        "present while a worker runs the job (the claim: its token); expiry means the worker died",
        ttl_setting="job_heartbeat_ttl",
    ),
    KeySpec(
        "job_cancel",
        "job:{job_id}:cancel",
        "string",
        "durable",
        "set by cancel; queued jobs never start, running ones stop at the next chunk",
        ttl=JOB_CANCEL_TTL,
    ),
    KeySpec(
        "job_events",
        "events:job:{job_id}",
        "channel",
        "durable",
        "PUBLISH of every progress/state change of one job",
    ),
    KeySpec(
        "jobs_events",
        "events:jobs",
        "channel",
        "durable",
        "PUBLISH of every job's state changes (dashboards, `jobs follow`)",
    ),
    KeySpec(
        "reconciler_lock",
        "lock:reconciler",
        "string",
        "durable",
        "one reconciler pass at a time across all processes",
        ttl=RECONCILER_LOCK_TTL,
    ),
    KeySpec(
        "workers",
        "workers",
        "set",
        "durable",
        "node names of the workers that advertised themselves; a member whose `worker` hash "
        "expired is dropped by the next reader",
    ),
    KeySpec(
        "worker",
        "worker:{node}",
        "hash",
        "durable",
        "one live worker: host, pid, queues, start time and the strategies it has loaded "
        "(JSON name -> version hash); refreshed every third of its TTL while it runs",
        ttl=WORKER_TTL,
    ),
    KeySpec(
        "ratelimit",
        "ratelimit:{name}",
        "prefix",
        "durable",
        "namespace of one cluster-wide rate limiter (limits' RedisStorage key_prefix); "
        "holds only its ratelimit_quota and ratelimit_subject keys",
    ),
    KeySpec(
        "ratelimit_quota",
        "ratelimit:{name}:{quota}",
        "list",
        "durable",
        "moving window of one quota: a timestamp per unit of cost granted, trimmed to the "
        "limit; TTL = the quota's window (at most the value shown), refreshed by every grant",
        ttl=RATELIMIT_MAX_TTL,
    ),
    KeySpec(
        "ratelimit_subject",
        "ratelimit:{name}:{quota}:{subject}",
        "list",
        "durable",
        "the same moving window kept per subject (a user name, a client address) for a "
        "limiter that limits each subject on its own (the dashboard's failed logins)",
        ttl=RATELIMIT_MAX_TTL,
    ),
    KeySpec(
        "fetch_lock",
        "lock:fetch:{symbol}:{timeframe}",
        "string",
        "durable",
        "held by the one job fetching a series from the provider (fetch-then-backtest); "
        "others wait, then find the data stored; refreshed while the fetch runs",
        ttl=FETCH_LOCK_TTL,
    ),
    KeySpec(
        "fetched_mark",
        "fetched:{symbol}:{timeframe}",
        "string",
        "durable",
        "set when a job fetched the series: sibling jobs (a sweep's chunks) within the TTL do "
        "not re-fetch its last sessions",
        ttl=FETCHED_MARK_TTL,
    ),
    KeySpec(
        "quota_spent",
        "quota-spent:{name}:{quota}",
        "string",
        "durable",
        "set when the provider says one quota of limiter {name} is spent (EODHD's HTTP 402: "
        "the day's calls): the Unix time it resets; every process refuses to send until then",
        ttl_text="expires at the reset it holds (midnight GMT for EODHD's daily quota)",
    ),
    KeySpec(
        "session",
        "session:{session_id}",
        "hash",
        "durable",
        "one dashboard login: user, admin, created, last_seen, address, csrf token; the "
        "cookie holds only the signed id; TTL sliding (the session TTL, renewed per request)",
        ttl_setting="dashboard_session_ttl",
    ),
    KeySpec(
        "user_sessions",
        "sessions:{user}",
        "set",
        "durable",
        "ids of one user's sessions, so a password change and `user remove` end them at "
        "once; set by each login (no session outlives it)",
        ttl_text="`TRADERUNNER_DASHBOARD_SESSION_MAX_AGE` + `_SESSION_TTL` (default 46800)",
    ),
    KeySpec(
        "latest_candle",
        "candle:{symbol}:{timeframe}",
        "string",
        "cache",
        "newest bar of one series (binary: ts + OHLCV + source); also kept in process, "
        "invalidated by tracking",
        ttl_text="one bar (the timeframe's seconds)",
    ),
    KeySpec(
        "latest_candles",
        "candle:",
        "prefix",
        "cache",
        "CLIENT TRACKING BCAST prefix of the latest candles (in-process tier invalidation)",
    ),
    KeySpec(
        "candle_series",
        "series:{symbol}:{timeframe}:g{generation}",
        "string",
        "cache",
        "a whole stored series as binary rows, keyed by the store's series generation: an "
        "append extends the value (APPEND), a rewrite of stored bars makes a new generation, "
        "so a new key (old ones expire); TTL refreshed by every append",
        ttl_setting="cache_series_ttl",
    ),
    KeySpec(
        "strategy_config",
        "config:{name}",
        "string",
        "cache",
        "one strategy config as JSON; also kept in process, invalidated by tracking",
        ttl_setting="cache_config_ttl",
    ),
    KeySpec(
        "strategy_configs",
        "config:",
        "prefix",
        "cache",
        "CLIENT TRACKING BCAST prefix of the strategy configs (in-process tier invalidation)",
    ),
    KeySpec(
        "provider_response",
        "response:{digest}",
        "string",
        "cache",
        "a raw provider response (zlib) by the SHA-256 of the provider's request key",
        ttl_setting="cache_response_ttl",
    ),
    KeySpec(
        "cache_fill_lock",
        "fill:{key}",
        "string",
        "cache",
        "held by the one process that loads a missing cache key from the store (stampede "
        f"guard; the others wait for the key); {LATEST_FILL_LOCK_TTL} s for a candle, the "
        "value shown for a series (refreshed while it loads, so a dead loader's lock soon "
        "expires)",
        ttl=CACHE_FILL_LOCK_TTL,
    ),
    KeySpec(
        "cache_stats",
        "cache:stats",
        "hash",
        "cache",
        "hits, misses, errors, local hits and store loads per kind, summed over processes",
        ttl=CACHE_STATS_TTL,
    ),
    # -- Celery's keys, written by kombu under the same prefix ---------------------------------
    KeySpec(
        "celery_queue",
        "{queue}",
        "list",
        "durable",
        "Celery messages of one queue (interactive, batch) at priority step 0",
    ),
    # -- the bus ----------------------------------------------------------------------------
    KeySpec(
        "bus_stream",
        "bus:{topic}",
        "stream",
        "durable",
        "the durable stream of one topic (`signals`, `candles.{timeframe}`): one JSON envelope "
        "per entry (field `envelope`), read by one consumer group per service (`trader`); "
        "trimmed to about TRADERUNNER_BUS_STREAM_MAXLEN entries (default 100000)",
    ),
    KeySpec(
        "bus_dead",
        "bus:{topic}:dead",
        "stream",
        "durable",
        "dead letters of one topic: the original entry, the reason (bad_json, bad_envelope, "
        "unknown_type, wrong_version, wrong_topic, handler_failed, undeliverable), the group "
        "and the delivery count; trimmed to about 10000 entries",
    ),
    KeySpec(
        "bus_channel",
        "bus:{topic}:live",
        "channel",
        "durable",
        "PUBLISH of every envelope of one topic, for live screens (`signals tail`, the "
        "dashboard): ephemeral, a subscriber loses what is sent while it is away",
    ),
    # -- the trader ---------------------------------------------------------------------------
    KeySpec(
        "trader_halt",
        "trader:halt",
        "string",
        "durable",
        "the kill switch: present (JSON: who, why, when) while the trader refuses new orders; "
        "set by `trader halt` or the daily loss limit, deleted by `trader resume`",
    ),
    KeySpec(
        "positions_snapshot",
        "positions:{account}",
        "string",
        "cache",
        "JSON snapshot of one paper account (cash, equity, positions) for the screens, "
        "rewritten after every bar the trader records; the store is the record",
        ttl=POSITIONS_SNAPSHOT_TTL,
    ),
    KeySpec(
        "celery_queue_step",
        "{queue}:{step}",
        "list",
        "durable",
        "the same at priority steps 1..9 (interactive jobs use 0-4, batch jobs 5-9)",
    ),
    KeySpec(
        "kombu_binding",
        "_kombu.binding.{exchange}",
        "set",
        "durable",
        "kombu's bindings of one exchange (our queues, Celery's remote control and events)",
    ),
    KeySpec(
        "kombu_binding_permanent",
        "_kombu.binding_permanent.{exchange}",
        "set",
        "durable",
        "kombu's record of the bindings a worker declared itself (kept across restarts)",
    ),
    KeySpec(
        "kombu_binding_deadlines",
        "_kombu.binding_deadlines",
        "zset",
        "durable",
        "kombu's expiry times of bindings declared with a deadline",
    ),
    KeySpec(
        "celery_unacked",
        "unacked",
        "hash",
        "durable",
        "messages delivered to a worker and not yet acked (restored after the visibility timeout)",
    ),
    KeySpec(
        "celery_unacked_index",
        "unacked_index",
        "zset",
        "durable",
        "delivery time of each unacked message",
    ),
    KeySpec(
        "celery_unacked_mutex",
        "unacked_mutex",
        "string",
        "durable",
        "held while a worker restores unacked messages",
        ttl_text="300 (kombu)",
    ),
    KeySpec(
        "celery_reply_queue",
        "{reply_id}.reply.celery.pidbox",
        "list",
        "durable",
        "replies to one Celery remote-control call (Flower, `celery inspect`)",
        ttl_text="kombu's reply expiry",
    ),
    KeySpec(
        "celery_pidbox_queue",
        "{node}.celery.pidbox",
        "list",
        "durable",
        "remote-control commands for one worker node (Celery's pidbox: `celery inspect`, "
        "`celery control shutdown`, Flower); like every kombu list also at `:{step}`",
        ttl_text="kombu's pidbox expiry",
    ),
    KeySpec(
        "celery_event_queue",
        "celeryev.{receiver_id}",
        "list",
        "durable",
        "task and worker events for one event receiver (Flower) while it listens",
        ttl_text="none; removed when the receiver leaves",
    ),
)

_PATTERNS = {spec.builder: spec.pattern for spec in SCHEMA}

# What a placeholder may hold when a key is matched back to its pattern (:func:`owners`): a
# part never holds ":" except a cache key inside a fill lock; queues are ours.
# Celery node names hold an "@" (name@host), kombu's reply ids never do.
_PART = {
    "queue": f"(?:{'|'.join(q.value for q in Queue)})",
    "step": "[1-9]",
    "key": ".+",
    "node": "[^:@]+@[^:]+",
    "reply_id": "[0-9a-f-]+",
}


def _regex(pattern: str) -> re.Pattern[str]:
    pieces = re.split(r"{(\w+)}", pattern)
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else _PART.get(p, "[^:]+") for i, p in enumerate(pieces))
    )


_REGEXES = {spec.builder: _regex(spec.pattern) for spec in SCHEMA if spec.type != "prefix"}


def owners(key: str, prefix: str) -> list[str]:
    """The builders whose pattern ``key`` matches (exactly one for a key of ours).

    For audits: a key under ``prefix`` that matches none was built by hand or is not
    documented here; one that matches several makes the schema ambiguous.
    """
    if not key.startswith(prefix):
        return []
    bare = key[len(prefix) :]
    return [builder for builder, rx in _REGEXES.items() if rx.fullmatch(bare)]


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builders bound to one prefix. Pass one instance down; never build keys by hand."""

    prefix: str = "tr:"

    def _key(self, builder: str, **parts: object) -> str:
        return self.prefix + _PATTERNS[builder].format(**parts)

    def job(self, job_id: str) -> str:
        return self._key("job", job_id=job_id)

    def job_heartbeat(self, job_id: str) -> str:
        return self._key("job_heartbeat", job_id=job_id)

    def job_cancel(self, job_id: str) -> str:
        return self._key("job_cancel", job_id=job_id)

    def job_events(self, job_id: str) -> str:
        return self._key("job_events", job_id=job_id)

    def jobs_events(self) -> str:
        return self._key("jobs_events")

    def reconciler_lock(self) -> str:
        return self._key("reconciler_lock")

    def workers(self) -> str:
        return self._key("workers")

    def worker(self, node: str) -> str:
        return self._key("worker", node=node)

    def ratelimit(self, name: str) -> str:
        """Namespace of the limiter ``name``; its quota keys are ``{this}:{quota}``."""
        return self._key("ratelimit", name=name)

    def ratelimit_quota(self, name: str, quota: str) -> str:
        return self._key("ratelimit_quota", name=name, quota=quota)

    def ratelimit_subject(self, name: str, quota: str, subject: str) -> str:
        return self._key("ratelimit_subject", name=name, quota=quota, subject=subject)

    def fetch_lock(self, symbol: str, timeframe: str) -> str:
        return self._key("fetch_lock", symbol=symbol, timeframe=timeframe)

    def fetched_mark(self, symbol: str, timeframe: str) -> str:
        return self._key("fetched_mark", symbol=symbol, timeframe=timeframe)

    def quota_spent(self, name: str, quota: str) -> str:
        return self._key("quota_spent", name=name, quota=quota)

    # -- dashboard sessions -----------------------------------------------------------------

    def session(self, session_id: str) -> str:
        return self._key("session", session_id=session_id)

    def user_sessions(self, user: str) -> str:
        return self._key("user_sessions", user=user)

    def latest_candle(self, symbol: str, timeframe: str) -> str:
        return self._key("latest_candle", symbol=symbol, timeframe=timeframe)

    def latest_candles(self) -> str:
        """Prefix of every latest-candle key (for CLIENT TRACKING BCAST PREFIX)."""
        return self._key("latest_candles")

    def candle_series(self, symbol: str, timeframe: str, generation: int | str) -> str:
        return self._key("candle_series", symbol=symbol, timeframe=timeframe, generation=generation)

    def strategy_config(self, name: str) -> str:
        return self._key("strategy_config", name=name)

    def strategy_configs(self) -> str:
        """Prefix of every strategy-config key (for CLIENT TRACKING BCAST PREFIX)."""
        return self._key("strategy_configs")

    def provider_response(self, digest: str) -> str:
        return self._key("provider_response", digest=digest)

    def cache_fill_lock(self, key: str) -> str:
        """The fill lock of the cache key ``key`` (given with or without the prefix)."""
        return self._key("cache_fill_lock", key=key.removeprefix(self.prefix))

    def cache_stats(self) -> str:
        return self._key("cache_stats")

    def celery_queue(self, queue: str) -> str:
        return self._key("celery_queue", queue=queue)

    def celery_queue_step(self, queue: str, step: int) -> str:
        return self._key("celery_queue_step", queue=queue, step=step)

    def kombu_binding(self, exchange: str) -> str:
        return self._key("kombu_binding", exchange=exchange)

    def kombu_binding_permanent(self, exchange: str) -> str:
        return self._key("kombu_binding_permanent", exchange=exchange)

    def kombu_binding_deadlines(self) -> str:
        return self._key("kombu_binding_deadlines")

    def celery_unacked(self) -> str:
        return self._key("celery_unacked")

    def celery_unacked_index(self) -> str:
        return self._key("celery_unacked_index")

    def celery_unacked_mutex(self) -> str:
        return self._key("celery_unacked_mutex")

    def celery_reply_queue(self, reply_id: str) -> str:
        return self._key("celery_reply_queue", reply_id=reply_id)

    def celery_pidbox_queue(self, node: str) -> str:
        return self._key("celery_pidbox_queue", node=node)

    def celery_event_queue(self, receiver_id: str) -> str:
        return self._key("celery_event_queue", receiver_id=receiver_id)

    # -- the bus (bus/) -------------------------------------------------------------------------

    def bus_stream(self, topic: str) -> str:
        return self._key("bus_stream", topic=topic)

    def bus_dead(self, topic: str) -> str:
        return self._key("bus_dead", topic=topic)

    def bus_channel(self, topic: str) -> str:
        """The Pub/Sub channel of ``topic`` (a glob such as ``candles.*`` for PSUBSCRIBE)."""
        return self._key("bus_channel", topic=topic)

    # -- the trader (trader/) -------------------------------------------------------------------

    def trader_halt(self) -> str:
        return self._key("trader_halt")

    def positions_snapshot(self, account: str) -> str:
        return self._key("positions_snapshot", account=account)

    def everything(self) -> str:
        """SCAN pattern matching every key of this deployment."""
        return f"{self.prefix}*"


def _ttl_cell(spec: KeySpec) -> str:
    if spec.ttl_setting:
        from traderunner.config import Settings

        default = Settings.model_fields[spec.ttl_setting].default
        return f"`TRADERUNNER_{spec.ttl_setting.upper()}` (default {default})"
    if spec.ttl_text:
        return spec.ttl_text
    return "none" if spec.ttl is None else str(spec.ttl)


def markdown_table() -> str:
    """The schema as a Markdown table (for docs/redis-keys.md)."""
    lines = [
        "| builder | key (after the prefix) | type | TTL (s) | instance | what |",
        "|---|---|---|---|---|---|",
    ]
    for spec in SCHEMA:
        lines.append(
            f"| `{spec.builder}` | `{spec.pattern}` | {spec.type} | {_ttl_cell(spec)} | "
            f"{spec.role} | {spec.doc} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(), end="")
