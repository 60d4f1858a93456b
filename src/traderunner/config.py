"""Typed settings, read once per entrypoint and passed down.

Every setting comes, highest precedence first, from what the entrypoint passes (CLI options
such as ``--data-dir``), an environment variable with the prefix ``TRADERUNNER_`` (for example
``TRADERUNNER_DATA_DIR``), a ``.env`` file in the working directory, a TOML file, or its
default. The TOML file is ``--config FILE`` (or ``TRADERUNNER_CONFIG``), else
``traderunner.toml`` in the data directory when it exists; its keys are the setting names
below without the prefix (``redis_port = 6500``). An unknown key, a file that is not TOML and
a missing ``--config`` file are errors (one line naming the file). Nothing in the package reads
the environment anywhere else: entrypoints call :func:`load_settings` once and hand the frozen
:class:`Settings` to what they build.

Settings
    config          the TOML file that was read (None when there was none)
    data_dir        where the SQLite store, numba cache and (later) embedded Redis live;
                    default ``~/.local/share/traderunner`` (``$XDG_DATA_HOME/traderunner`` when set)
    store_url       any SQLAlchemy URL; default ``sqlite:///{data_dir}/traderunner.db``
    strategy_path   extra folders of user strategies (``os.pathsep``-separated), each ``*.py``
                    file is loaded and every Strategy subclass in it registered
    redis_url       the durable Redis (broker, job state, bus, sessions, rate limits); empty =
                    the embedded Valkey server traderunner starts itself on ``redis_port``
    cache_url       the cache Redis (candles, series, configs); empty = ``redis_url`` when that
                    is set, else the embedded cache server on ``cache_port``
    redis_port      embedded durable server's port (default 6479, clear of a system Redis on
                    6379); cache_port the embedded cache server's (default 6480)
    redis_bind      address the embedded servers listen on (default 127.0.0.1)
    cache_maxmemory bound of the embedded cache server (default 256mb, allkeys-lru)
    redis_prefix    prefix of every key traderunner and Celery write (default ``tr:``)
    allow_unsafe_redis  accept a durable Redis that could evict or lose queued work
    job_time_limit  hard time limit of one job in seconds (default 3600); Celery's visibility
                    timeout is derived from it (2.5x)
    job_heartbeat_ttl   seconds a running job's heartbeat lives (refreshed every third of it);
                    its expiry is how a dead worker is noticed (default 15)
    job_max_attempts    deliveries before a job whose worker keeps dying is failed (default 5)
    reconcile_interval  seconds between reconciler passes in each worker (default 5)
    reconcile_grace     age in seconds before a queued job missing from the broker is
                    re-enqueued (default 10)
    worker_stall_timeout  seconds an idle worker may leave waiting messages untaken before it
                    restarts itself (its consumer is stuck after a broker reconnect; default 60)
    eodhd_token     EODHD API token (secret: never logged or printed)
    eodhd_base_url  EODHD API base (default https://eodhd.com/api)
    eodhd_calls_per_minute / eodhd_calls_per_day  the plan's quotas, shared by every process
                    and machine through the durable Redis (defaults 1000 / 100000)
    eodhd_intraday_cost calls one intraday request costs against the day's quota (default 5);
                    the minute quota counts HTTP requests, whatever they cost
    eodhd_outage_budget seconds a request keeps retrying through 5xx answers and dropped
                    connections (maintenance windows) before it gives up (default 1800)
    eodhd_refetch_sessions  trading sessions re-fetched and overwritten at the end of a stored
                    series on a resumed fetch (provisional bars, revised volume; default 2)
    cache_local     keep the hottest cache keys in process, invalidated by Redis (default on)
    cache_series_ttl / cache_response_ttl / cache_config_ttl  cache lifetimes in seconds
    dashboard_secret_key  signs the dashboard's session cookies (secret); empty = generated
                    once into ``{data_dir}/dashboard.secret`` (0600). Give every dashboard
                    process behind one address the same key
    dashboard_session_ttl   seconds a dashboard session lives after its last request (sliding;
                    default 3600); dashboard_session_max_age  seconds after the login that it
                    ends however active (default 43200)
    dashboard_login_user_limit / dashboard_login_address_limit / dashboard_login_window
                    failed logins one user name (default 5) and login attempts one client
                    address (default 100) may make in any ``dashboard_login_window`` seconds
                    (default 900) before further attempts are refused
    dashboard_proxy_hops    reverse proxies in front of the dashboard whose X-Forwarded-For and
                    X-Forwarded-Proto headers are trusted (default 0: none)
    dashboard_flower_url    where the System page links to Flower (default http://127.0.0.1:5555)
    bus_stream_maxlen   entries each bus topic's stream keeps (approximate trimming at every
                    publish; default 100000): a consumer away while more are published loses
                    the oldest
    bus_claim_idle  seconds an entry may stay unacknowledged before another consumer of its
                    group claims it (its consumer died); above the slowest handler (default 30)
    bus_max_deliveries  deliveries of one entry before it goes to the dead-letter stream
                    (default 5)
    trader_max_position_value  largest market value one sleeve (live strategy x symbol) may
                    be sized to, in cash (0 = no limit; the default)
    trader_max_gross_exposure  largest sum of |position values| of an account, in cash,
                    counting the order being checked (0 = no limit)
    trader_max_orders_per_minute  orders an account may place in any 60 s, shared by every
                    trader process through the rate limiter (0 = no limit)
    trader_daily_loss_limit  fraction of the day's opening equity (UTC day of the bars) an
                    account may lose before the kill switch trips (0 = off; 0.05 = 5 %)
    trader_hours    when orders may be placed, ``HH:MM-HH:MM`` in ``trader_hours_tz``
                    (default empty: any time), judged on the signal's bar time
    trader_signal_wait  seconds the trader waits for the signals a candle lists before it
                    steps the bar without them (default 30; they are then applied a bar late)
    notify_webhooks comma-separated URLs that get a JSON POST for every fill, rejection and
                    kill-switch change; notify_telegram_token / notify_telegram_chat send the
                    same to a Telegram chat through the bot API at notify_telegram_api;
                    notify_retries (default 3) and notify_timeout (default 5 s) per message
"""

from __future__ import annotations

import contextvars
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from traderunner.errors import ConfigError

#: The settings file looked for in the data directory.
CONFIG_FILE_NAME = "traderunner.toml"

# The TOML file of the Settings being built (pydantic-settings builds its sources in a class
# method, so the file reaches it this way).
_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml", default=None)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "traderunner"


class Settings(BaseSettings):
    """All of traderunner's configuration. Frozen: build a new one to change it."""

    model_config = SettingsConfigDict(
        env_prefix="TRADERUNNER_", env_file=".env", extra="ignore", frozen=True
    )

    config: Path | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)
    store_url: str = ""
    strategy_path: str = ""
    redis_url: str = ""
    cache_url: str = ""
    redis_port: int = Field(default=6479, ge=1, le=65535)
    cache_port: int = Field(default=6480, ge=1, le=65535)
    redis_bind: str = "127.0.0.1"
    cache_maxmemory: str = "256mb"
    redis_prefix: str = Field(default="tr:", min_length=1, max_length=32)
    allow_unsafe_redis: bool = False
    job_time_limit: int = Field(default=3600, ge=10, le=7 * 86400)
    job_heartbeat_ttl: int = Field(default=15, ge=1, le=3600)
    job_max_attempts: int = Field(default=5, ge=1, le=100)
    reconcile_interval: float = Field(default=5.0, gt=0, le=3600)
    reconcile_grace: float = Field(default=10.0, ge=0, le=86400)
    worker_stall_timeout: float = Field(default=60.0, gt=0, le=86400)

    # -- market data: the EODHD provider, its shared rate limit, the cache ------------------
    eodhd_token: SecretStr = SecretStr("")
    eodhd_base_url: str = "https://eodhd.com/api"
    eodhd_timeout: float = Field(default=30.0, gt=0, le=600)
    eodhd_calls_per_minute: int = Field(default=1000, ge=1)
    eodhd_calls_per_day: int = Field(default=100_000, ge=1)
    eodhd_intraday_cost: int = Field(default=5, ge=1, le=100)
    eodhd_outage_budget: float = Field(default=1800.0, ge=0, le=86_400)
    eodhd_refetch_sessions: int = Field(default=2, ge=0, le=30)
    cache_local: bool = True
    cache_series_ttl: int = Field(default=3600, ge=1)
    cache_response_ttl: int = Field(default=86_400, ge=1)
    cache_config_ttl: int = Field(default=3600, ge=1)

    # -- the bus: durable streams with consumer groups ----------------------------------------
    bus_stream_maxlen: int = Field(default=100_000, ge=100)
    bus_claim_idle: float = Field(default=30.0, gt=0, le=86400)
    bus_max_deliveries: int = Field(default=5, ge=1, le=1000)

    # -- the trader: risk checks and notifications -------------------------------------------
    trader_max_position_value: float = Field(default=0.0, ge=0)
    trader_max_gross_exposure: float = Field(default=0.0, ge=0)
    trader_max_orders_per_minute: int = Field(default=0, ge=0, le=1_000_000)
    trader_daily_loss_limit: float = Field(default=0.0, ge=0, lt=1)
    trader_hours: str = ""
    trader_hours_tz: str = "America/New_York"
    trader_signal_wait: float = Field(default=30.0, gt=0, le=3600)
    notify_webhooks: str = ""
    notify_telegram_token: SecretStr = SecretStr("")
    notify_telegram_chat: str = ""
    notify_telegram_api: str = "https://api.telegram.org"
    notify_retries: int = Field(default=3, ge=0, le=20)
    notify_timeout: float = Field(default=5.0, gt=0, le=120)

    # -- the dashboard: sessions, login limits, links ----------------------------------------
    dashboard_secret_key: SecretStr = SecretStr("")
    dashboard_session_ttl: int = Field(default=3600, ge=10, le=30 * 86400)
    dashboard_session_max_age: int = Field(default=12 * 3600, ge=10, le=90 * 86400)
    dashboard_login_user_limit: int = Field(default=5, ge=1, le=10_000)
    dashboard_login_address_limit: int = Field(default=100, ge=1, le=100_000)
    dashboard_login_window: int = Field(default=900, ge=1, le=86400)
    dashboard_proxy_hops: int = Field(default=0, ge=0, le=5)
    dashboard_flower_url: str = "http://127.0.0.1:5555"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _toml_file.get()
        files = () if toml is None else (TomlConfigSettingsSource(settings_cls, toml_file=toml),)
        return (init_settings, env_settings, dotenv_settings, *files, file_secret_settings)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file inside ``data_dir``."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.data_dir / 'traderunner.db'}"

    @property
    def embedded_redis(self) -> bool:
        """True when traderunner runs its own Valkey servers (no ``redis_url`` given)."""
        return not self.redis_url

    @property
    def redis_dir(self) -> Path:
        """Where the embedded servers keep config, data, pid and log files."""
        return self.data_dir / "redis"

    @property
    def strategy_dirs(self) -> tuple[Path, ...]:
        """Folders of user strategies, in the order given."""
        return tuple(
            Path(p).expanduser() for p in self.strategy_path.split(os.pathsep) if p.strip()
        )


def load_settings(**overrides: object) -> Settings:
    """Read the settings once: ``overrides`` (CLI options), environment, ``.env``, TOML file.

    ``config=FILE`` (``--config``) names the TOML file; without it ``TRADERUNNER_CONFIG``,
    else ``{data_dir}/traderunner.toml`` when it exists. Raises ConfigError in one line.
    """
    first = _build(overrides, None)  # where the data directory and the config file are
    toml = first.config
    if toml is None and (first.data_dir / CONFIG_FILE_NAME).is_file():
        toml = first.data_dir / CONFIG_FILE_NAME
    if toml is None:
        return first
    toml = toml.expanduser()
    data = _read_toml(toml)
    for key in ("config", *(() if first.config is not None else ("data_dir",))):
        if key in data:
            raise ConfigError(
                f"{toml}: '{key}' cannot be set in this file (it is what locates it); "
                f"use {'--config' if key == 'config' else 'TRADERUNNER_DATA_DIR or --data-dir'}"
            )
    return _build({**overrides, "config": toml}, toml, data)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: create it or fix --config") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = sorted(set(Settings.model_fields) - {"config"})
    unknown = sorted(set(data) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in {path}{hint}: its keys are the TRADERUNNER_* "
            "setting names without the prefix, in lower case"
        )
    return data


def _build(
    overrides: dict[str, object], toml: Path | None, data: dict[str, Any] | None = None
) -> Settings:
    token = _toml_file.set(toml)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        from_file = (
            data is not None
            and name in data
            and name not in overrides
            and f"TRADERUNNER_{name.upper()}" not in os.environ
        )
        where = f"{name} in {toml}" if from_file else "TRADERUNNER_" + name.upper()
        raise ConfigError(
            f"invalid setting {where if name else 'settings'}: {first['msg']}"
        ) from None
    finally:
        _toml_file.reset(token)
