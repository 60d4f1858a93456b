"""``traderunner jobs ...`` and the ``--submit`` path of ``backtest`` and ``sweep``.

Everything goes through :class:`traderunner.jobs.JobClient`; the CLI never touches Celery.
Following a job shows a Rich progress bar; Ctrl-C detaches (the job keeps running).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common

if TYPE_CHECKING:
    from traderunner.domain.jobs import JobRecord
    from traderunner.jobs import JobClient
    from traderunner.jobs.spec import Spec

jobs_app = typer.Typer(
    help="Durable jobs: list, show, follow, cancel, retry.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
JobArg = Annotated[str, typer.Argument(help="Job id (see 'traderunner jobs list').")]


def default_owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def job_client(ctx: typer.Context, *, reading: bool = False) -> Iterator[JobClient]:
    """A JobClient for this command.

    Commands that write (submit, cancel, retry, reconcile) start the embedded servers when
    they are not running, and say so. Commands that only read (``reading=True``: list, show,
    follow, workers) start nothing: with the durable Redis down they read the store's records
    and say that live progress is missing.
    """
    from traderunner.cli.services import ensure_redis
    from traderunner.jobs import JobClient

    state = common.get_state(ctx)
    state.load_strategies()
    if not reading:
        ensure_redis(state.settings)
    with JobClient.open(state.settings, require_redis=not reading) as client:
        if not client.live:
            where = (
                "the embedded durable Redis is not running"
                if state.settings.embedded_redis
                else "the durable Redis does not answer"
            )
            common.err_console().print(
                f"note: {where}: showing the store's records without live progress "
                "('traderunner redis start' or 'traderunner worker' starts it)",
                markup=False,
                soft_wrap=True,
            )
        yield client


def record_dict(record: JobRecord) -> dict[str, Any]:
    data = record.to_dict()
    data.pop("extra", None)
    return data


def submit_and_follow(
    ctx: typer.Context,
    spec: Spec,
    *,
    queue: str | None,
    level: int,
    follow: bool,
    json_output: bool,
) -> None:
    """Submit ``spec`` (validated first: bad input is refused, nothing is enqueued)."""
    with job_client(ctx) as client:
        record = client.submit(spec, queue=queue, level=level, owner=default_owner())
        console = common.err_console()
        if not json_output:
            console.print(
                f"submitted {record.kind.value} job [bold]{record.id}[/] to the "
                f"{record.queue.value} queue"
            )
        check = client.strategy_check(spec.strategy) if hasattr(spec, "strategy") else None
        for note in check.notes() if check is not None else ():
            console.print(f"note: {note}", markup=False, soft_wrap=True)
        if follow:
            record = follow_job(client, record.id, show=common.show_progress(json_output))
        if json_output:
            payload = record_dict(record)
            if record.state.terminal:
                payload["result"] = _result_brief(client, record)
            common.print_json(payload)
        elif record.state.terminal:
            _print_outcome(client, record)


def follow_job(client: JobClient, job_id: str, *, show: bool) -> JobRecord:
    """Follow until the job ends; Ctrl-C detaches and returns the last record seen."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    record = client.status(job_id)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=common.err_console(),
        disable=not show,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task(f"job {job_id[:8]}", total=1.0, state=record.state.value)
            for record in client.follow(job_id, poll_s=0.5):
                progress.update(
                    task,
                    completed=record.progress,
                    state=f"{record.state.value} {record.message}"[:60],
                )
    except KeyboardInterrupt:
        common.err_console().print(
            f"detached; job {job_id} keeps running ('traderunner jobs follow {job_id}')"
        )
    return record


def _result_brief(client: JobClient, record: JobRecord) -> dict[str, Any] | None:
    from traderunner.domain.jobs import JobKind

    result = client.result(record.id)
    if result is None:
        return None
    if record.kind is JobKind.BACKTEST:
        return {
            "trades": result.get("trades"),
            "metrics": result.get("metrics"),
            "symbols": result.get("symbols"),
            "sources": result.get("sources"),
        }
    if record.kind is JobKind.SWEEP:
        rows = result.get("rows", [])
        best = max(rows, key=lambda r: _num(r.get("sharpe")), default=None)
        return {
            "combinations": result.get("combinations"),
            "chunks": result.get("chunks"),
            "skipped": result.get("skipped"),
            "best": best,
        }
    return result


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("-inf")


def _print_outcome(client: JobClient, record: JobRecord) -> None:
    from traderunner.domain.jobs import JobKind, JobState

    console = common.out_console()
    if record.state is not JobState.SUCCEEDED:
        console.print(f"job {record.id} {record.state.value}: {record.error or record.message}")
        return
    result = client.result(record.id) or {}
    if record.kind is JobKind.BACKTEST:
        from traderunner.cli.render import format_metric

        sources = result.get("sources") or {}
        common.warn_synthetic(common.synthetic_symbols(sources), console=common.err_console())
        metrics = result.get("metrics") or {}
        console.print(f"job {record.id} succeeded: {result.get('trades')} trades")
        for name in ("total_return", "cagr", "sharpe", "max_drawdown", "win_rate"):
            if name in metrics:
                console.print(f"  {name:<14} {format_metric(name, metrics[name])}")
    elif record.kind is JobKind.SWEEP:
        brief = _result_brief(client, record) or {}
        console.print(
            f"job {record.id} succeeded: {brief.get('combinations')} combinations in "
            f"{brief.get('chunks')} chunks; best by sharpe: {brief.get('best')}"
        )
    else:
        console.print(f"job {record.id} succeeded")


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="queued, running, succeeded, failed, cancelled (repeatable)."),
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="backtest, sweep, noop.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 30,
    json_output: JsonOpt = False,
) -> None:
    """Jobs, newest first (sweep chunks are shown under their sweep: jobs show ID)."""
    from traderunner.domain.jobs import JobKind, JobState
    from traderunner.errors import UserInputError

    try:
        states = [JobState(s.strip().lower()) for s in state or []] or None
        kinds = [JobKind(k.strip().lower()) for k in kind or []] or None
    except ValueError as exc:
        raise UserInputError(f"{exc}: see 'traderunner jobs list --help'") from None
    with job_client(ctx, reading=True) as client:
        records = client.list(states=states, owner=owner, kinds=kinds, limit=limit)
    if json_output:
        common.print_json({"jobs": [record_dict(r) for r in records]})
        return
    from rich.table import Table

    table = Table(title=f"{len(records)} job(s)")
    for col in ("id", "kind", "state", "progress", "owner", "created", "attempts", "message"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.id,
            r.kind.value,
            r.state.value,
            f"{r.progress:.0%}",
            r.owner,
            r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "",
            str(r.attempts),
            (r.error or r.message)[:60],
        )
    common.out_console().print(table)


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: JobArg, json_output: JsonOpt = False) -> None:
    """One job: its record, its chunks (sweeps) and a brief of its result."""
    from collections import Counter

    with job_client(ctx, reading=True) as client:
        record = client.status(job_id)
        payload = record_dict(record)
        children = client.children(job_id)
        if children:
            payload["chunks"] = dict(Counter(c.state.value for c in children))
        if record.state.terminal:
            payload["result"] = _result_brief(client, record)
    if json_output:
        common.print_json(payload)
        return
    console = common.out_console()
    for key, value in payload.items():
        if key not in ("spec", "result"):
            console.print(f"[bold]{key:<12}[/] {value}")
    console.print(f"[bold]{'spec':<12}[/] {common.json_safe(record.spec)}")
    if payload.get("result") is not None:
        console.print(f"[bold]{'result':<12}[/] {common.json_safe(payload['result'])}")


@jobs_app.command("follow")
def follow(ctx: typer.Context, job_id: JobArg, json_output: JsonOpt = False) -> None:
    """Follow a job's progress until it ends; Ctrl-C detaches without cancelling."""
    with job_client(ctx, reading=True) as client:
        record = follow_job(client, job_id, show=common.show_progress(json_output))
        if json_output:
            common.print_json(record_dict(record))
        elif record.state.terminal:
            _print_outcome(client, record)


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: JobArg, json_output: JsonOpt = False) -> None:
    """Cancel: a queued job never starts, a running one stops at its next check."""
    with job_client(ctx) as client:
        record = client.cancel(job_id)
    _print_changed(record, json_output)


@jobs_app.command("retry")
def retry(ctx: typer.Context, job_id: JobArg, json_output: JsonOpt = False) -> None:
    """Queue a failed or cancelled job again."""
    with job_client(ctx) as client:
        record = client.retry(job_id)
    _print_changed(record, json_output)


def _print_changed(record: JobRecord, json_output: bool) -> None:
    if json_output:
        common.print_json(record_dict(record))
    else:
        common.out_console().print(f"job {record.id}: {record.state.value}")


@jobs_app.command("reconcile")
def reconcile(ctx: typer.Context) -> None:
    """One reconciler pass now (workers run it every few seconds on their own)."""
    from traderunner.jobs.reconciler import reconcile_once

    state = common.get_state(ctx)
    with job_client(ctx) as client:
        report = reconcile_once(
            state.settings,
            client.store,
            client.redis,
            client.keys,
            client.app,
            owner=f"cli-{default_owner()}",
        )
    common.out_console().print(
        "another process is reconciling right now"
        if report.skipped_locked
        else f"re-enqueued {len(report.requeued)} queued and {len(report.revived)} orphaned jobs; "
        f"finished {len(report.finished_parents)} sweeps"
    )
