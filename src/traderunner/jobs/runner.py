"""What a worker does with one delivery of a job. The Celery task is a thin shell around it.

1. Read the record from the store (the message carries only the job id). Unknown or finished
   jobs are dropped; a cancelled or cancel-flagged queued job is marked cancelled, never run.
2. **Claim** the job: ``SET job:{id}:hb <token> NX EX ttl``. A live claim by another worker
   means a duplicate delivery: drop it. While the job runs a thread refreshes the claim (the
   heartbeat); when a worker dies it expires and the reconciler re-enqueues the job.
3. A job whose result is already in the store (a redelivery after the result was written) is
   marked succeeded without running again: results are keyed by job id, written once.
4. Run: a backtest or a sweep chunk (engine), or a no-op. Progress goes to the job board; the
   cancel flag is checked between symbols (backtest) and combinations (sweep chunk).
5. Record the outcome: result (insert-if-absent), then state. A sweep chunk then checks its
   parent: the last chunk assembles the sweep table and finishes the parent.

Errors: a user or strategy error fails the job with its message (no retry: it would fail
again); cancellation marks it cancelled; anything that looks like infrastructure (Redis or the
store unreachable) releases the claim and is re-raised so Celery retries it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from traderunner.config import Settings
from traderunner.domain.jobs import JobKind, JobRecord, JobState
from traderunner.domain.period import Period
from traderunner.domain.runs import RunOrigin
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import (
    CancelledError,
    DataRangeError,
    RedisError,
    StoreError,
    StrategyError,
    TraderunnerError,
    UnknownStrategyError,
    UserInputError,
)
from traderunner.jobs.board import JobBoard
from traderunner.jobs.sweeps import finish_parent
from traderunner.redisdb.keys import Keys
from traderunner.redisdb.scripts import CLAIM_UNLESS_CANCELLED, PEXPIRE_IF_HELD, RELEASE_IF_HELD
from traderunner.store import Store

if TYPE_CHECKING:
    from traderunner.cache import MarketCache

log = logging.getLogger(__name__)

INFRA_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    StoreError,
    redis.ConnectionError,
    redis.TimeoutError,
)


@dataclass(slots=True)
class WorkerContext:
    """What a worker process needs, built once per process and passed down."""

    settings: Settings
    store: Store
    durable: redis.Redis
    keys: Keys
    board: JobBoard
    worker_name: str
    heartbeats: Heartbeats
    market: MarketCache | None = None  # candles through the series cache when set

    @classmethod
    def open(
        cls, settings: Settings, name: str, *, store: Store | None = None, cache: bool = True
    ) -> WorkerContext:
        """Build the connections of one worker process (after any fork); ``cache=False``
        loads candles from the store without the series cache."""
        from traderunner.cache import MarketCache
        from traderunner.redisdb.connection import connect, resolve_urls

        store = store or Store.from_settings(settings)
        durable = connect(resolve_urls(settings).durable, name=name)
        keys = Keys(settings.redis_prefix)
        return cls(
            settings,
            store,
            durable,
            keys,
            JobBoard(store, durable, keys),
            name,
            Heartbeats(durable, settings.job_heartbeat_ttl),
            MarketCache.from_settings(settings, store) if cache else None,
        )

    @property
    def heartbeat_ttl(self) -> int:
        return self.settings.job_heartbeat_ttl

    def close(self) -> None:
        if self.market is not None:
            self.market.close()
        self.store.close()
        self.durable.close()


class RetryableError(Exception):
    """Infrastructure failed mid-job; the delivery should be retried."""


class QuotaWaitError(Exception):
    """The job's fetch found the provider's quota spent: it waits (QUEUED) for ``wait_s``."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = max(1.0, float(wait_s))


def execute(ctx: WorkerContext, job_id: str) -> str:
    """Run one delivery of ``job_id``; returns what happened (for logs and tests).

    The common path costs one Lua call (claim) and one compare-and-set UPDATE ... RETURNING
    (start) before the work; the record is read separately only when the job cannot start.
    """
    token = f"{ctx.worker_name}:{secrets.token_hex(4)}"
    hb_key = ctx.keys.job_heartbeat(job_id)
    claimed = int(
        ctx.durable.eval(  # type: ignore[arg-type]
            CLAIM_UNLESS_CANCELLED, 2, hb_key, ctx.keys.job_cancel(job_id), token, ctx.heartbeat_ttl
        )
    )
    if claimed == 0:
        return "duplicate"  # another live worker holds it
    try:
        if claimed < 0:
            ctx.board.transition(
                job_id,
                JobState.CANCELLED,
                expect=(JobState.QUEUED, JobState.RUNNING),
                message="cancelled before it started",
            )
            return "cancelled"
        record = ctx.board.start(job_id, ctx.worker_name)
        if record is None:
            return _not_runnable(ctx, job_id)
        return _run_started(ctx, record, token)
    finally:
        with contextlib.suppress(redis.RedisError):  # else it expires on its own
            ctx.durable.eval(RELEASE_IF_HELD, 1, hb_key, token)


def _not_runnable(ctx: WorkerContext, job_id: str) -> str:
    record = ctx.store.jobs.get(job_id)
    if record is None:
        log.warning("job %s: no record in the store; message dropped", job_id)
        return "unknown"
    return "cancelled" if record.state is JobState.CANCELLED else "already-finished"


def _run_started(ctx: WorkerContext, record: JobRecord, token: str) -> str:
    """The job is RUNNING in the store with ``record.attempts`` counting this delivery."""
    job_id = record.id
    # A job on its first delivery cannot have a result; only redeliveries need to look.
    if record.attempts > 1 and _has_result(ctx, record):
        ctx.board.transition(
            job_id,
            JobState.SUCCEEDED,
            expect=(JobState.RUNNING,),
            progress=1.0,
            message="result already recorded",
        )
        _after_success(ctx, record)
        return "already-recorded"
    if record.attempts > ctx.settings.job_max_attempts:
        ctx.board.transition(
            job_id,
            JobState.FAILED,
            expect=(JobState.RUNNING,),
            error=f"gave up after {record.attempts - 1} attempts (its worker was lost each time)",
        )
        _after_failure(ctx, record)
        return "gave-up"
    _parent_running(ctx, record)
    try:
        with ctx.heartbeats.hold(ctx.keys.job_heartbeat(job_id), token):
            summary, result = _dispatch(ctx, record)
    except CancelledError:
        ctx.board.transition(
            job_id,
            JobState.CANCELLED,
            expect=(JobState.RUNNING,),
            message="cancelled while running",
        )
        _after_failure(ctx, record)
        return "cancelled"
    except QuotaWaitError as exc:
        # Not a failure: the job waits for the quota's reset, visibly, and runs again then.
        ctx.board.transition(
            job_id,
            JobState.QUEUED,
            expect=(JobState.RUNNING,),
            attempts=record.attempts - 1,
            message=str(exc),
        )
        raise
    except INFRA_ERRORS as exc:
        # Give the attempt back: the retry is the same attempt, not a new failure.
        ctx.board.transition(
            job_id,
            JobState.QUEUED,
            expect=(JobState.RUNNING,),
            attempts=record.attempts - 1,
            message=f"retrying: {exc}",
        )
        raise RetryableError(str(exc)) from exc
    except (UserInputError, StrategyError) as exc:
        error = str(exc)
        if isinstance(exc, UnknownStrategyError):  # submitted while another worker had it
            error = (
                f"worker {ctx.worker_name} does not have strategy "
                f"{record.spec.get('strategy')!r}: start the workers with its folder in "
                "TRADERUNNER_STRATEGY_PATH (or its package installed), then "
                f"'traderunner jobs retry {job_id}' ({exc})"
            )
        ctx.board.transition(job_id, JobState.FAILED, expect=(JobState.RUNNING,), error=error)
        _after_failure(ctx, record)
        return "failed"
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TraderunnerError):
            log.exception("job %s failed unexpectedly", job_id)
        ctx.board.transition(job_id, JobState.FAILED, expect=(JobState.RUNNING,), error=message)
        _after_failure(ctx, record)
        return "failed"
    # The result (when it lives in job_results) and the final state: one transaction.
    ctx.board.transition(
        job_id,
        JobState.SUCCEEDED,
        expect=(JobState.RUNNING,),
        progress=1.0,
        message=summary,
        result=result,
    )
    _after_success(ctx, record)
    return "succeeded"


def _has_result(ctx: WorkerContext, record: JobRecord) -> bool:
    if record.kind is JobKind.BACKTEST:
        return ctx.store.runs.get(record.id) is not None
    return ctx.store.jobs.result(record.id) is not None


class Heartbeats:
    """One thread per process refreshes the claims of every job running in it.

    A thread per job would cost a start and a join per job; this one sleeps a third of the
    TTL between rounds and refreshes each claim it holds (compare-and-expire on the token).
    """

    def __init__(self, durable: redis.Redis, ttl: int) -> None:
        self.durable = durable
        self.ttl = ttl
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, key: str, token: str) -> Iterator[None]:
        with self._lock:
            self._held[key] = token
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(key, None)

    def _run(self) -> None:
        interval = max(self.ttl / 3.0, 0.2)
        while True:
            time.sleep(interval)
            with self._lock:
                held = list(self._held.items())
            for key, token in held:
                try:
                    self.durable.eval(PEXPIRE_IF_HELD, 1, key, token, self.ttl * 1000)
                except redis.RedisError as exc:
                    log.debug("heartbeat %s missed: %s", key, exc)


class _Reporter:
    """Throttled progress reports and cancel checks for the engine's callbacks."""

    def __init__(self, ctx: WorkerContext, job_id: str, every_s: float = 0.25) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.every_s = every_s
        self._last_report = 0.0
        self._last_check = 0.0
        self._cancelled = False

    def report(self, done: int, total: int, what: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self._last_report < self.every_s:
            return
        self._last_report = now
        self.ctx.board.progress(self.job_id, done / max(total, 1), what)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._last_check >= self.every_s:
            self._last_check = now
            self._cancelled = self.ctx.board.cancel_requested(self.job_id)
        return self._cancelled


def _load(ctx: WorkerContext, spec: dict[str, Any]) -> dict[str, Any]:
    from traderunner.marketdata import load_candles

    period = Period.parse(spec.get("start"), spec.get("end"))
    if ctx.market is not None:
        # The series cache: every chunk of a sweep reads the series the first one loaded.
        tf = Timeframe.parse(spec["timeframe"])
        return {
            symbol: ctx.market.series(symbol, tf, period.start_ns, period.end_ns)
            for symbol in spec["symbols"]
        }
    return load_candles(
        ctx.store,
        list(spec["symbols"]),
        Timeframe.parse(spec["timeframe"]),
        period.start,
        period.end,
    )


def _fetch_first(
    ctx: WorkerContext, record: JobRecord, spec: dict[str, Any], reporter: _Reporter
) -> None:
    """The guide's first phase: fetch what the store lacks (marketdata.pipeline).

    A spent quota raises QuotaWaitError (the job waits, QUEUED, for the reset); anything else
    that kept data from arriving fails the job with the fetch's own words.
    """
    from datetime import UTC, datetime

    from traderunner.marketdata.pipeline import fetch_needed, open_provider

    tf = Timeframe.parse(spec["timeframe"])
    period = Period.parse(spec.get("start"), spec.get("end"))
    if period.start is None:
        raise UserInputError("a job that fetches needs a start (--from)")
    ctx.board.progress(record.id, 0.0, "fetching data")
    with open_provider(str(spec["fetch"]), ctx.settings, tf) as provider:
        report = fetch_needed(
            ctx.store,
            provider,
            list(spec["symbols"]),
            tf,
            period.start,
            period.end or datetime.now(UTC),
            durable=ctx.durable,
            keys=ctx.keys,
            progress=reporter.report,
            refetch_sessions=ctx.settings.eodhd_refetch_sessions,
        )
    if report.quota_resets_at is not None:
        when = datetime.fromtimestamp(report.quota_resets_at, tz=UTC)
        raise QuotaWaitError(
            f"waiting for the EODHD daily quota reset at {when:%Y-%m-%d %H:%M} UTC "
            f"(fetched {report.requests} requests so far; it goes on then)",
            report.quota_resets_at - time.time(),
        )
    if report.retry_after is not None:
        raise QuotaWaitError(
            f"waiting {report.retry_after:.0f} s for the EODHD rate limit "
            f"(fetched {report.requests} requests so far)",
            report.retry_after,
        )
    failed = [s for s in report.symbols if not s.ok]
    if failed:
        raise DataRangeError(f"fetching data failed for {failed[0].symbol}: {failed[0].error}")
    ctx.board.progress(record.id, 0.0, "backtesting")


#: (kind, JSON payload, table or None): a job result stored with the job's final state.
JobResult = tuple[JobKind, dict[str, Any], Any] | None


def _dispatch(ctx: WorkerContext, record: JobRecord) -> tuple[str, JobResult]:
    """Run the job; returns its summary line and the result to store with its final state
    (None when the result went elsewhere: a backtest is saved as a run under the job's id)."""
    spec = record.spec
    reporter = _Reporter(ctx, record.id)
    if record.kind is JobKind.NOOP:
        if spec.get("sleep_s"):
            deadline = time.monotonic() + float(spec["sleep_s"])
            while time.monotonic() < deadline:
                if reporter.should_stop():
                    raise CancelledError("cancelled")
                time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
        if spec.get("fail"):
            raise StrategyError(str(spec["fail"]))
        return "done", (JobKind.NOOP, {"ok": True}, None)
    from traderunner.engine import run_backtest, run_sweep
    from traderunner.marketdata.adjust import apply_adjustment, describe

    timings: dict[str, float] = {}
    if spec.get("fetch"):
        started = time.perf_counter()
        _fetch_first(ctx, record, spec, reporter)
        timings["fetch_s"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    candles, applied = apply_adjustment(ctx.store, _load(ctx, spec), spec.get("adjust"))
    adjusted = describe(applied)
    if record.kind is JobKind.BACKTEST:
        result = run_backtest(
            spec["strategy"],
            candles,
            dict(spec.get("params") or {}),
            progress=lambda done, total, *_: reporter.report(done, total, "backtesting"),
            should_stop=reporter.should_stop,
            **dict(spec.get("options") or {}),
        )
        ctx.store.runs.save_backtest(
            result,
            owner=record.owner,
            origin=RunOrigin.JOB,
            run_id=record.id,
            timeframe=spec["timeframe"],
            name=str(spec.get("name") or ""),
            period=Period.parse(spec.get("start"), spec.get("end")).describe(),
            prices=candles,
            details={
                "adjust": adjusted,
                **timings,
                "backtest_s": round(time.perf_counter() - started, 3),
            },
        )
        line = f"{result.n_trades} trades, total return {result.metrics.get('total_return', 0):.2%}"
        return line, None
    if record.kind is JobKind.SWEEP_CHUNK:
        sweep = run_sweep(
            spec["strategy"],
            candles,
            combos=list(spec["combos"]),
            workers=1,
            progress=lambda d, t: reporter.report(d, t, f"backtesting {d}/{t} combinations"),
            should_stop=reporter.should_stop,
            **dict(spec.get("options") or {}),
        )
        payload = {
            "offset": int(spec.get("offset", 0)),
            "count": len(sweep.rows),
            "elapsed_s": sweep.elapsed_s,
            "sources": {s: c.source for s, c in candles.items()},
            "adjust": adjusted,
            **timings,
        }
        return f"{len(sweep.rows)} combinations", (JobKind.SWEEP_CHUNK, payload, sweep.to_frame())
    raise UserInputError(f"job {record.id} has kind {record.kind.value}, which no task runs")


# -- sweep parents (the bookkeeping itself is in jobs/sweeps.py) ------------------------------


def _parent_running(ctx: WorkerContext, record: JobRecord) -> None:
    if record.parent:
        ctx.board.transition(
            record.parent, JobState.RUNNING, expect=(JobState.QUEUED,), message="chunks running"
        )


def _after_success(ctx: WorkerContext, record: JobRecord) -> None:
    if record.parent:
        finish_parent(ctx.store, ctx.board, record.parent)


def _after_failure(ctx: WorkerContext, record: JobRecord) -> None:
    if record.parent:
        finish_parent(ctx.store, ctx.board, record.parent)
