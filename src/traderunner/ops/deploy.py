"""Files for a server deployment: hardened Redis configs with per-role ACL users, systemd units.

``traderunner deploy redis-conf`` writes:

* ``durable.conf``: AOF (``appendfsync everysec``) plus RDB snapshots, ``maxmemory-policy
  noeviction`` (losing a key here loses work);
* ``cache.conf``: no persistence, ``maxmemory`` and ``allkeys-lru`` (all of it rebuilds from the
  store);
* ``users.acl`` (shared by both servers): ``default`` off, one user per role (``worker``,
  ``dashboard``, ``stream``, ``trader``) allowed only the key patterns that role uses (from
  :data:`traderunner.redisdb.keys.SCHEMA`, under the deployment's prefix) and no dangerous
  command (FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN, MONITOR, ...); ``admin`` for the
  operator (every key, no FLUSH*/DEBUG/SHUTDOWN, but CONFIG GET, INFO and BGSAVE for doctor and
  backups). Passwords are stored as SHA-256 hashes;
* ``{role}.env`` (0600) per role: its ``TRADERUNNER_REDIS_URL`` / ``TRADERUNNER_CACHE_URL``
  with its password, for the systemd units' ``EnvironmentFile``.

Both bind 127.0.0.1 unless told otherwise, with protected mode on. Given a certificate and key,
they serve TLS only (``port 0``, ``tls-port``) and the URLs become ``rediss://``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from traderunner.domain.jobs import Queue
from traderunner.redisdb.keys import SCHEMA, KeySpec

# Refused for every application user, whatever categories allow.
DANGEROUS = (
    "flushall",
    "flushdb",
    "keys",
    "config",
    "debug",
    "shutdown",
    "monitor",
    "save",
    "bgsave",
    "bgrewriteaof",
    "replicaof",
    "slaveof",
    "module",
    "acl",
    "swapdb",
    "migrate",
    "restore",
    "failover",
    "sync",
    "psync",
    "script|flush",
    "function",
)
# What every application client needs beyond the data commands: INFO (the durable check's
# fallback and the system page), naming its connection and the cache's CLIENT TRACKING.
# (Not CLIENT SETINFO: Redis 7.0 does not know it, and redis-py carries on when it is refused.)
APP_EXTRA = ("info", "client|setname", "client|getname", "client|id", "client|tracking")

_JOBS = ("job", "job_heartbeat", "job_cancel", "reconciler_lock", "workers", "worker")
_CELERY = (
    "celery_queue",
    "celery_queue_step",
    "kombu_binding",
    "kombu_binding_permanent",
    "kombu_binding_deadlines",
    "celery_unacked",
    "celery_unacked_index",
    "celery_unacked_mutex",
    "celery_reply_queue",
    "celery_pidbox_queue",
    "celery_event_queue",
)
_CACHE = (
    "latest_candle",
    "candle_series",
    "strategy_config",
    "provider_response",
    "cache_fill_lock",
    "cache_stats",
)
_RATE = ("ratelimit_quota", "ratelimit_subject")
_BUS = ("bus_stream", "bus_dead")
_SESSIONS = ("session", "user_sessions")
_CELERY_CHANNELS = ("*", "/0.celery.pidbox", "/0.celeryev/#")

#: role -> (the key builders it touches, the Pub/Sub channel patterns after the prefix)
ROLES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Celery's own remote control and events travel on prefixed channels too: "*" after the
    # prefix for the two roles that speak Celery, plus kombu's two PSUBSCRIBE patterns
    # written out, because the server grants a PSUBSCRIBE only for a pattern listed
    # literally (database 0, as in the URLs written here).
    "worker": (_JOBS + _CELERY + _CACHE + _RATE, _CELERY_CHANNELS),
    "dashboard": (_JOBS + _CELERY + _CACHE + _RATE + _SESSIONS + _BUS, _CELERY_CHANNELS),
    "stream": (_BUS + _CACHE + _RATE, ("bus:*",)),
    "trader": (_BUS + _CACHE, ("bus:*",)),
}
APP_ROLES = tuple(ROLES)
ALL_ROLES = (*APP_ROLES, "admin")


def key_patterns(spec: KeySpec) -> list[str]:
    """The glob(s) of one schema entry: ``{name}`` parts become ``*``; ``{queue}`` becomes each
    queue's name (a bare ``*`` would be every key)."""
    if spec.pattern.startswith("{queue}"):
        rest = [spec.pattern.replace("{queue}", q.value) for q in Queue]
        return [re.sub(r"\{[^}]+\}", "*", p) for p in rest]
    glob = re.sub(r"\{[^}]+\}", "*", spec.pattern)
    if spec.builder.startswith("celery_") and spec.type == "list":
        return [glob, f"{glob}:*"]  # kombu's priority steps
    return [glob]


def role_rule(role: str, prefix: str, password: str) -> str:
    """One ``users.acl`` line for ``role`` (its password stored hashed)."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    if role == "admin":
        grants = "+@all -flushall -flushdb -debug -shutdown -module -acl|setuser -acl|deluser"
        return f"user admin on #{digest} resetkeys ~* resetchannels &* {grants}"
    builders, channels = ROLES[role]
    by_name = {s.builder: s for s in SCHEMA}
    keys: list[str] = []
    for builder in builders:
        for glob in key_patterns(by_name[builder]):
            pattern = f"~{prefix}{glob}"
            if pattern not in keys:
                keys.append(pattern)
    chans = " ".join(f"&{prefix}{c}" for c in channels)
    allowed = " ".join(f"+{c}" for c in APP_EXTRA)
    refused = " ".join(f"-{c}" for c in DANGEROUS)
    return (
        f"user {role} on #{digest} resetkeys {' '.join(keys)} resetchannels {chans} "
        f"-@all +@read +@write +@stream +@pubsub +@scripting +@connection +@transaction "
        f"+@hash +@list +@set +@sortedset +@string +@keyspace +@fast +@slow -@dangerous "
        f"-@admin {allowed} {refused}"
    )


@dataclass(frozen=True, slots=True)
class RedisDeploy:
    """What ``deploy redis-conf`` writes; see the module docstring."""

    out: Path
    bind: str = "127.0.0.1"
    durable_port: int = 6379
    cache_port: int = 6380
    cache_maxmemory: str = "1gb"
    durable_dir: str = "/var/lib/traderunner/redis-durable"
    cache_dir: str = "/var/lib/traderunner/redis-cache"
    prefix: str = "tr:"
    host: str = ""  # the name clients use (defaults to the bind address)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    passwords: Mapping[str, str] = field(default_factory=dict)

    def _common(self, port: int, directory: str, role: str) -> list[str]:
        lines = [
            "# written by traderunner deploy redis-conf",
            f"bind {self.bind}",
            "protected-mode yes",
            f'dir "{directory}"',
            f'aclfile "{self.out / "users.acl"}"',
            "tcp-keepalive 60",
            "timeout 0",
            "databases 16",
            'logfile ""',  # the service manager (journald) keeps the log
            "daemonize no",
            "supervised auto",
            f"# {role} server",
        ]
        if self.tls_cert is not None:
            lines += [
                "port 0",
                f"tls-port {port}",
                f'tls-cert-file "{self.tls_cert}"',
                f'tls-key-file "{self.tls_key}"',
            ]
            if self.tls_ca is not None:
                lines += [f'tls-ca-cert-file "{self.tls_ca}"', "tls-auth-clients optional"]
            else:
                lines.append("tls-auth-clients no")
            lines += ['tls-protocols "TLSv1.2 TLSv1.3"']
        else:
            lines.append(f"port {port}")
        return lines

    def durable_conf(self) -> str:
        lines = self._common(self.durable_port, self.durable_dir, "durable")
        lines += [
            "appendonly yes",
            "appendfsync everysec",
            'save "3600 1 300 100 60 10000"',
            "maxmemory-policy noeviction",
            "stop-writes-on-bgsave-error yes",
        ]
        return "\n".join(lines) + "\n"

    def cache_conf(self) -> str:
        lines = self._common(self.cache_port, self.cache_dir, "cache")
        lines += [
            "appendonly no",
            'save ""',
            f"maxmemory {self.cache_maxmemory}",
            "maxmemory-policy allkeys-lru",
        ]
        return "\n".join(lines) + "\n"

    def acl(self, passwords: Mapping[str, str]) -> str:
        lines = ["user default off resetkeys -@all"]
        lines += [role_rule(role, self.prefix, passwords[role]) for role in ALL_ROLES]
        return "\n".join(lines) + "\n"

    def url(self, role: str, password: str, port: int) -> str:
        host = self.host or self.bind.split()[0]
        if self.tls_cert is None:
            return f"redis://{role}:{password}@{host}:{port}/0"
        # The clients check the server's certificate against the given CA (a private one, or
        # the server's own self-signed certificate); without one, against the system's.
        ca = f"?ssl_ca_certs={self.tls_ca}" if self.tls_ca is not None else ""
        return f"rediss://{role}:{password}@{host}:{port}/0{ca}"

    def env(self, role: str, password: str) -> str:
        """``{role}.env``: the role's two URLs (with its password) and the key prefix."""
        return (
            f"# written by traderunner deploy redis-conf for the {role} role; keep it 0600\n"
            f"TRADERUNNER_REDIS_URL={self.url(role, password, self.durable_port)}\n"
            f"TRADERUNNER_CACHE_URL={self.url(role, password, self.cache_port)}\n"
            f"TRADERUNNER_REDIS_PREFIX={self.prefix}\n"
        )

    def write(self) -> dict[str, Path]:
        """Write every file; returns them by name. Passwords not given are generated."""
        passwords = {r: self.passwords.get(r) or secrets.token_urlsafe(24) for r in ALL_ROLES}
        self.out.mkdir(parents=True, exist_ok=True)
        written = {
            "durable.conf": (self.durable_conf(), 0o640),
            "cache.conf": (self.cache_conf(), 0o640),
            "users.acl": (self.acl(passwords), 0o640),
        }
        for role in ALL_ROLES:
            written[f"{role}.env"] = (self.env(role, passwords[role]), 0o600)
        paths: dict[str, Path] = {}
        for name, (text, mode) in written.items():
            path = self.out / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.chmod(path, mode)
            paths[name] = path
        return paths
