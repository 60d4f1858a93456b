"""Helpers for job tests: real worker processes, settings as environment, seeded stores."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from tests.clihelpers import clean_env
from traderunner.config import Settings
from traderunner.domain.jobs import JobState
from traderunner.domain.timeframe import Timeframe
from traderunner.jobs.client import JobClient
from traderunner.store import Store

ENV_FIELDS = (
    "data_dir",
    "store_url",
    "redis_url",
    "cache_url",
    "redis_prefix",
    "job_heartbeat_ttl",
    "job_max_attempts",
    "reconcile_interval",
    "reconcile_grace",
    "strategy_path",
    "job_time_limit",
    "worker_stall_timeout",
    "eodhd_base_url",
    "eodhd_calls_per_minute",
    "eodhd_calls_per_day",
    "eodhd_outage_budget",
)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process load exactly these settings."""
    env = clean_env()
    for name in ENV_FIELDS:
        value = getattr(settings, name)
        if name == "store_url":
            value = settings.resolved_store_url
        env[f"TRADERUNNER_{name.upper()}"] = str(value)
    token = settings.eodhd_token.get_secret_value()
    if token:
        env["TRADERUNNER_EODHD_TOKEN"] = token
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """A real ``python -m traderunner.jobs`` worker (Celery, prefork) in its own process group."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        concurrency: int = 2,
        queues: str = "interactive,batch",
        node: str = "test",
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.queues = queues
        self.node = node
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def node_name(self) -> str:
        """The Celery node name of the current start (``-n``)."""
        return f"{self.node}{self.starts}-{os.getpid()}@localhost"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"worker-{self.starts}.log"

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "traderunner.jobs",
                "--concurrency",
                str(self.concurrency),
                "--queues",
                self.queues,
                "--loglevel",
                "INFO",
                "--name",
                self.node_name,
            ],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if " ready." in text:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{text[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"worker not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a machine losing power would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 120.0) -> int:
        """SIGTERM the main process only: Celery's warm shutdown. Returns its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def assert_running(self) -> None:
        """Fail at once, with the log, if the worker process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"the worker exited (code {self.proc.returncode}):\n{self.logs()[-3000:]}"
            )

    def logs(self) -> str:
        return "\n".join(
            (self.log_dir / f"worker-{i}.log").read_text(errors="replace")[-4000:]
            for i in range(1, self.starts + 1)
        )


def seed_candles(store: Store, symbols: Iterable[str], days: int = 5) -> None:
    """Synthetic M5 candles for ``symbols`` (deterministic) in the store."""
    from traderunner.marketdata import synthetic_candles

    end = datetime(2025, 6, 30, tzinfo=UTC)
    start = datetime.fromtimestamp(end.timestamp() - days * 86400 * 7 / 5, tz=UTC)
    for symbol in symbols:
        store.candles.upsert(synthetic_candles(symbol, Timeframe.M5, start, end))


def wait_all(
    client: JobClient,
    job_ids: list[str],
    timeout: float,
    states: Iterable[JobState] = (),
    worker: WorkerProcess | None = None,
) -> dict[str, JobState]:
    """Poll the store until every job ended (or ``timeout``); returns id -> state.

    With ``worker``, a worker process that exits while jobs are still open fails at once with
    its log, instead of the test waiting out the whole timeout for jobs nobody will run.
    """
    wanted = set(states) or {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    deadline = time.monotonic() + timeout
    while True:  # read at least once, even with timeout=0
        found = {r.id: r.state for r in client.store.jobs.list(limit=None)}
        if all(found.get(j) in wanted for j in job_ids) or time.monotonic() >= deadline:
            return {j: found.get(j, JobState.QUEUED) for j in job_ids}
        if worker is not None:
            worker.assert_running()  # nobody would run the open jobs
        time.sleep(0.2)
