"""``traderunner jobs ...`` and the ``--submit`` path of ``backtest`` and ``sweep``.

Everything goes through :class:`traderunner.jobs.JobClient`; the CLI never touches Celery.
Following a job shows a Rich progress bar; Ctrl-C detaches (the job keeps running). A finished
job prints the same tables as the run would have printed here (``cli/show.py``).

A command that waits for a job (``--submit`` with ``--follow``, ``jobs follow``) exits with
the job's outcome: 0 succeeded, :data:`EXIT_FAILED` (3) failed, :data:`EXIT_CANCELLED` (4)
cancelled, :data:`EXIT_DETACHED` (130) detached with Ctrl-C while the job still runs. Bad input
exits 2 before anything is enqueued (``cli/app.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common, show

if TYPE_CHECKING:
    from traderunner.domain.jobs import JobRecord
    from traderunner.jobs import JobClient
    from traderunner.jobs.spec import Spec

EXIT_FAILED = 3
EXIT_CANCELLED = 4
EXIT_DETACHED = 130

jobs_app = typer.Typer(
    help="Durable jobs: list, show, follow, cancel, retry.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
JobArg = Annotated[
    str, typer.Argument(help="Job id, or a unique prefix of it (see 'traderunner jobs list').")
]
TradesOpt = Annotated[
    int, typer.Option("--trades", min=0, help="A backtest: show its last N trades.")
]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="A sweep: how many rows to show.")]
SortOpt = Annotated[str, typer.Option("--sort", help="A sweep: the metric to rank by.")]
AdminOpt = Annotated[
    bool, typer.Option("--admin", help="Act as an administrator on another user's job.")
]


@dataclass(frozen=True, slots=True)
class Output:
    """What a run prints, the same for a local run and a job: ``--json``, ``--trades``,
    ``--top``/``--sort`` and ``--csv`` (every sweep row, written when the job has finished)."""

    json: bool = False
    trades: int = 0
    top: int = 10
    sort: str = "sharpe"
    csv: Path | None = None
    ascending: bool = False
    min_trades: int = 0


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
    owner: str,
    output: Output,
) -> None:
    """Submit ``spec`` (validated first: bad input is refused, nothing is enqueued), then
    follow it and print its outcome as the local run would; exits with the job's outcome."""
    from traderunner.errors import OptionError

    if output.csv is not None and not follow:
        raise OptionError(
            "--csv is written when the sweep has finished: drop --no-follow, or export the "
            "rows later with 'traderunner results export ID'"
        )
    with job_client(ctx) as client:
        record = client.submit(spec, queue=queue, level=level, owner=owner)
        if not output.json:
            common.err_console().print(
                f"submitted {record.kind.value} job [bold]{record.id}[/] to the "
                f"{record.queue.value} queue"
            )
        detached = False
        check = client.strategy_check(spec.strategy) if hasattr(spec, "strategy") else None
        for note in check.notes() if check is not None else ():
            common.err_console().print(f"note: {note}", markup=False, soft_wrap=True)
        if follow:
            record, detached = follow_job(client, record.id, show=common.show_progress(output.json))
        finish(client, record, output, waited=follow, detached=detached)


def follow_job(client: JobClient, job_id: str, *, show: bool) -> tuple[JobRecord, bool]:
    """Follow until the job ends; Ctrl-C detaches. Returns the last record and whether the
    user detached."""
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
        return record, True
    return record, False


def exit_code(record: JobRecord) -> int:
    """0 for a job that succeeded or has not ended, else its outcome's exit code."""
    from traderunner.domain.jobs import JobState

    return {JobState.FAILED: EXIT_FAILED, JobState.CANCELLED: EXIT_CANCELLED}.get(record.state, 0)


def finish(
    client: JobClient, record: JobRecord, output: Output, *, waited: bool, detached: bool = False
) -> None:
    """Print the job (and its result, once it has one) and, when the command waited for it,
    exit with its outcome."""
    if output.json:
        payload = record_dict(record)
        result = job_document(client, record, output)
        if result is not None:
            payload["result"] = result
        common.print_json(payload)
    else:
        print_job(client, record, output)
    code = EXIT_DETACHED if detached else exit_code(record)
    if waited and code:
        raise typer.Exit(code)


def job_document(client: JobClient, record: JobRecord, output: Output) -> dict[str, Any] | None:
    """The job's result as its local run prints it with ``--json`` (None until there is one)."""
    from traderunner.domain.jobs import JobKind, JobState

    if record.state is not JobState.SUCCEEDED:
        return None
    doc = client.result(record.id)
    if doc is None or record.kind is not JobKind.SWEEP:
        return doc
    if output.csv is not None:
        _write_rows(doc, output.csv)
    payload = show.sweep_payload(
        doc,
        sort=output.sort,
        top=output.top,
        ascending=output.ascending,
        min_trades=output.min_trades,
    )
    payload["result_id"] = record.id
    return payload


def _write_rows(doc: dict[str, Any], path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(doc.get("rows") or [])
    common.write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def _spec_header(record: JobRecord) -> tuple[str, str, str]:
    """(timeframe, period, name) of a job from its spec."""
    from traderunner.domain.period import Period

    spec = record.spec
    try:
        period = Period.parse(spec.get("start"), spec.get("end")).describe()
    except Exception:  # a spec is validated before it is written; this is only display
        period = f"{spec.get('start')} .. {spec.get('end')}"
    return str(spec.get("timeframe") or ""), period, str(spec.get("name") or "")


def print_job(client: JobClient, record: JobRecord, output: Output) -> None:
    """The job's record as a table and, when it succeeded, its result's tables; before that,
    the header of what it runs."""
    from traderunner.cli.render import job_panel, run_header
    from traderunner.domain.jobs import JobKind, JobState

    console = common.out_console()
    chunks = (
        dict(Counter(c.state.value for c in client.children(record.id)))
        if record.kind is JobKind.SWEEP
        else None
    )
    console.print(job_panel(record, chunks))
    timeframe, period, name = _spec_header(record)
    doc = client.result(record.id) if record.state is JobState.SUCCEEDED else None
    if doc is not None and record.kind is JobKind.BACKTEST:
        show.print_backtest(
            doc, timeframe=timeframe, period=period, name=name, trades=output.trades
        )
        show.print_saved(record.id, console)
    elif doc is not None and record.kind is JobKind.SWEEP:
        grid = record.spec.get("grid") or {}
        show.print_sweep(
            doc,
            grid,
            timeframe=timeframe,
            period=period,
            sort=output.sort,
            top=output.top,
            name=name,
            ascending=output.ascending,
            min_trades=output.min_trades,
        )
        if output.csv is not None:
            _write_rows(doc, output.csv)
            console.print(f"wrote {len(doc.get('rows') or [])} rows to {output.csv}")
        show.print_saved(record.id, console)
    elif record.kind in (JobKind.BACKTEST, JobKind.SWEEP):
        from traderunner.engine import BacktestOptions
        from traderunner.reports.text import grid_text, params_text

        spec = record.spec
        what = (
            f"sweep {spec.get('strategy')} {grid_text(spec.get('grid') or {})}"
            if record.kind is JobKind.SWEEP
            else f"{spec.get('strategy')} {params_text(spec.get('params') or {})}"
        )
        options = BacktestOptions.from_kwargs(**dict(spec.get("options") or {})).to_dict()
        for line in run_header(
            title=what,
            symbols=[str(s) for s in spec.get("symbols") or ()],
            timeframe=timeframe,
            period=period,
            options=options,
            name=name,
        ):
            console.print(line)


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="queued, running, succeeded, failed, cancelled (repeatable)."),
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's jobs.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="backtest, sweep, noop.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only this strategy.")] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Only jobs that run this symbol.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Created at or after: YYYY-MM-DD or ISO (UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Created up to: YYYY-MM-DD (whole day) or ISO.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 30,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (paging).")] = 0,
    json_output: JsonOpt = False,
) -> None:
    """Jobs, newest first, one page at a time (sweep chunks are shown by: jobs show ID)."""
    from datetime import timedelta

    from traderunner.cli.render import jobs_table
    from traderunner.domain.jobs import JobKind, JobState
    from traderunner.domain.period import Period
    from traderunner.errors import UserInputError

    try:
        states = [JobState(s.strip().lower()) for s in state or []] or None
        kinds = [JobKind(k.strip().lower()) for k in kind or []] or None
    except ValueError as exc:
        raise UserInputError(f"{exc}: see 'traderunner jobs list --help'") from None
    period = Period.parse(since, until)
    before = None if period.end is None else period.end + timedelta(microseconds=1)
    with job_client(ctx, reading=True) as client:
        page = client.list(
            states=states,
            owner=owner,
            kinds=kinds,
            strategy=strategy,
            symbol=symbol.strip().upper() if symbol else None,
            created_from=period.start,
            created_before=before,
            limit=limit,
            offset=offset,
        )
    show.print_page(
        page,
        noun="jobs",
        records=[record_dict(r) for r in page.items],
        table=lambda title: jobs_table(page.items, title),
        json_output=json_output,
    )


@jobs_app.command("show")
def show_job(
    ctx: typer.Context,
    job_id: JobArg,
    trades: TradesOpt = 10,
    top: TopOpt = 10,
    sort: SortOpt = "sharpe",
    json_output: JsonOpt = False,
) -> None:
    """One job: its record, its chunks (sweeps) and, when it succeeded, its result's tables."""
    with job_client(ctx, reading=True) as client:
        record = client.status(client.resolve(job_id))
        output = Output(json=json_output, trades=trades, top=top, sort=sort)
        if json_output:
            payload = record_dict(record)
            children = client.children(record.id)
            if children:
                payload["chunks"] = dict(Counter(c.state.value for c in children))
            result = job_document(client, record, output)
            if result is not None:
                payload["result"] = result
            common.print_json(payload)
            return
        print_job(client, record, output)


@jobs_app.command("follow")
def follow(
    ctx: typer.Context,
    job_id: JobArg,
    trades: TradesOpt = 0,
    top: TopOpt = 10,
    sort: SortOpt = "sharpe",
    json_output: JsonOpt = False,
) -> None:
    """Follow a job until it ends and print its outcome; Ctrl-C detaches without cancelling.

    Exits 0 when it succeeded, 3 when it failed, 4 when it was cancelled, 130 when detached.
    """
    with job_client(ctx, reading=True) as client:
        record, detached = follow_job(
            client, client.resolve(job_id), show=common.show_progress(json_output)
        )
        output = Output(json=json_output, trades=trades, top=top, sort=sort)
        finish(client, record, output, waited=True, detached=detached)


@jobs_app.command("cancel")
def cancel(
    ctx: typer.Context, job_id: JobArg, admin: AdminOpt = False, json_output: JsonOpt = False
) -> None:
    """Cancel: a queued job never starts, a running one stops at its next check."""
    with job_client(ctx) as client:
        full = client.resolve(job_id)
        record = client.cancel(full, actor=common.default_owner(), is_admin=admin)
    _print_changed(record, json_output)


@jobs_app.command("retry")
def retry(
    ctx: typer.Context, job_id: JobArg, admin: AdminOpt = False, json_output: JsonOpt = False
) -> None:
    """Queue a failed or cancelled job again."""
    with job_client(ctx) as client:
        full = client.resolve(job_id)
        record = client.retry(full, actor=common.default_owner(), is_admin=admin)
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
            owner=f"cli-{common.default_owner()}",
        )
    common.out_console().print(
        "another process is reconciling right now"
        if report.skipped_locked
        else f"re-enqueued {len(report.requeued)} queued and {len(report.revived)} orphaned jobs; "
        f"finished {len(report.finished_parents)} sweeps"
    )
