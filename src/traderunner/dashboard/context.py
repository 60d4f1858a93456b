"""What every page and callback of one dashboard process shares: its settings and connections.

Built once by :func:`open_context` (the entrypoint's settings passed in), closed once when the
server stops. Nothing here connects at import time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from traderunner.errors import ConfigError

if TYPE_CHECKING:
    from traderunner.config import Settings
    from traderunner.dashboard.accounts import Accounts, LoginLimits
    from traderunner.dashboard.sessions import SessionStore
    from traderunner.jobs.client import JobClient
    from traderunner.ratelimit import RateLimiter
    from traderunner.redisdb.connection import RedisClients
    from traderunner.store import Store


@dataclass
class DashboardContext:
    settings: Settings
    store: Store
    redis: RedisClients
    sessions: SessionStore
    limits: LoginLimits
    accounts: Accounts
    eodhd: RateLimiter
    _celery: Any = field(default=None, repr=False)
    _celery_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _workers: Any = field(default=None, repr=False)
    _jobs: Any = field(default=None, repr=False)
    _market: Any = field(default=None, repr=False)

    def market(self) -> Any:
        """The market cache (latest candles, Live page) on the cache Redis, built on first use."""
        with self._celery_lock:
            if self._market is None:
                from traderunner.cache.market import MarketCache

                self._market = MarketCache(
                    self.redis.cache, self.redis.keys, self.store, local=False
                )
            return self._market

    def jobs(self) -> JobClient:
        """The one job client of this process (submit, list, cancel, retry), built on first use.

        It shares the context's store; it opens its own connection to the durable Redis (the
        client checks it) and a publish-only Celery app.
        """
        with self._celery_lock:
            if self._jobs is None:
                from traderunner.jobs.client import JobClient

                self._jobs = JobClient.open(self.settings, store=self.store)
            return self._jobs

    def celery(self) -> Any:
        """The broadcast-only Celery app for worker inspection, built on first use."""
        with self._celery_lock:
            if self._celery is None:
                from traderunner.dashboard.readmodels.system import celery_app

                self._celery = celery_app(self.settings)
            return self._celery

    def workers(self) -> Any:
        """The one WorkerWatch of this process (System page), built on first use."""
        with self._celery_lock:
            if self._workers is None:
                from traderunner.dashboard.readmodels.system import WorkerWatch

                self._workers = WorkerWatch(self.celery)
            return self._workers

    def health(self) -> dict[str, str]:
        """``/healthz``: the durable Redis and the store answer."""
        import sqlalchemy as sa

        checks: dict[str, str] = {}
        try:
            self.redis.durable.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
        try:
            with self.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"down: {type(exc).__name__}"
        return checks

    def close(self) -> None:
        if self._jobs is not None:
            with contextlib.suppress(Exception):
                self._jobs.close()
        if self._market is not None:
            with contextlib.suppress(Exception):
                self._market.close()
        if self._workers is not None:
            self._workers.close()
        if self._celery is not None:
            with contextlib.suppress(Exception):
                self._celery.close()
        for closing in (self.limits.close, self.eodhd.close, self.redis.close, self.store.close):
            with contextlib.suppress(Exception):
                closing()


def open_context(settings: Settings) -> DashboardContext:
    """Connect to the store and both Redis roles (checking the durable one) for a dashboard."""
    from traderunner.dashboard.accounts import Accounts, LoginLimits
    from traderunner.dashboard.sessions import SessionStore
    from traderunner.ratelimit import limiter_from_settings
    from traderunner.redisdb.connection import open_clients
    from traderunner.store import Store
    from traderunner.strategies import load_user_strategies

    load_user_strategies(settings.strategy_dirs)  # the forms list the user's strategies too
    clients = open_clients(settings, name="traderunner-dashboard")
    try:
        store = Store.connect(settings.resolved_store_url)
    except Exception:
        clients.close()
        raise
    sessions = SessionStore(
        clients.durable,
        clients.keys,
        ttl=settings.dashboard_session_ttl,
        max_age=settings.dashboard_session_max_age,
    )
    limits = LoginLimits.from_settings(settings, clients.urls.durable)
    accounts = Accounts(store, sessions=sessions, limits=limits)
    return DashboardContext(
        settings=settings,
        store=store,
        redis=clients,
        sessions=sessions,
        limits=limits,
        accounts=accounts,
        eodhd=limiter_from_settings(settings),
    )


def secret_key(settings: Settings) -> str:
    """The cookie-signing secret: the setting, else one generated once into a 0600 file."""
    given = settings.dashboard_secret_key.get_secret_value()
    if given:
        if len(given) < 32:
            raise ConfigError(
                "TRADERUNNER_DASHBOARD_SECRET_KEY is too short: use at least 32 random "
                "characters (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return given
    path = settings.data_dir / "dashboard.secret"
    if path.exists():
        text = path.read_text().strip()
        if len(text) >= 32:
            return text
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the dashboard secret {path}: {exc.strerror}; set "
            "TRADERUNNER_DATA_DIR to a writable folder or TRADERUNNER_DASHBOARD_SECRET_KEY"
        ) from None
    return value
