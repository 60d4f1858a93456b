"""``traderunner results ...``: the saved runs (backtests and sweeps, run here or as jobs).

``list`` filters and pages them; ``show`` prints a run's tables again, as the run printed them;
``export`` writes its CSV files and a self-contained HTML report; ``delete`` and ``prune``
remove runs. Every id may be given as a unique prefix (at least four characters), as in git.
A run belongs to its owner: deleting another user's run needs ``--admin``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common, show

if TYPE_CHECKING:
    from traderunner.domain.runs import RunRecord
    from traderunner.store import Store

results_app = typer.Typer(
    help="Saved runs: list, show, export (CSV, HTML report), delete, prune.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
RunArg = Annotated[
    str,
    typer.Argument(help="Result id, or a unique prefix of it (see 'traderunner results list')."),
]
AdminOpt = Annotated[
    bool, typer.Option("--admin", help="Act as an administrator on other users' results.")
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, flag: str) -> timedelta:
    """``30d`` / ``12h`` / ``90m`` / ``2w`` / ``45s`` -> timedelta; UserInputError otherwise."""
    from traderunner.errors import UserInputError

    found = _DURATION.match(text or "")
    if not found:
        raise UserInputError(
            f"{flag} {text!r} is not a duration: write a number and a unit, e.g. 30d, 12h, 90m, 2w"
        )
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2).lower()])


def _meta(record: RunRecord) -> dict[str, Any]:
    return {
        "result_id": record.id,
        "kind": record.kind.value,
        "origin": record.origin.value,
        "owner": record.owner,
        "created_at": record.created_at.isoformat(),
        "timeframe": record.timeframe,
        "name": record.name,
    }


def _load(store: Store, text: str) -> tuple[RunRecord, dict[str, Any]]:
    rid = store.runs.resolve(text)
    record = store.runs.get(rid)
    doc = store.runs.document(rid)
    if record is None or doc is None:  # deleted between the two reads
        from traderunner.errors import DataRangeError

        raise DataRangeError(f"no result {text!r}: see 'traderunner results list'")
    return record, doc


@results_app.command("list")
def list_results(
    ctx: typer.Context,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only this strategy.")] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Only runs that include this symbol.")
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's runs.")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="backtest or sweep.", show_default=False)
    ] = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="local (run here) or job.", show_default=False)
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Saved at or after: YYYY-MM-DD or ISO (UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Saved up to: YYYY-MM-DD (whole day) or ISO.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 30,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (paging).")] = 0,
    json_output: JsonOpt = False,
) -> None:
    """Saved runs, newest first, one page at a time."""
    from traderunner.cli.render import runs_table
    from traderunner.domain.period import Period
    from traderunner.domain.runs import RunKind, RunOrigin
    from traderunner.errors import UserInputError

    try:
        kinds = RunKind(kind.strip().lower()) if kind else None
        origins = RunOrigin(origin.strip().lower()) if origin else None
    except ValueError as exc:
        raise UserInputError(f"{exc}: see 'traderunner results list --help'") from None
    period = Period.parse(since, until)
    with common.open_store(common.get_state(ctx).settings) as store:
        page = store.runs.list(
            strategy=strategy,
            symbol=symbol.strip().upper() if symbol else None,
            owner=owner,
            kind=kinds,
            origin=origins,
            created_from=period.start,
            created_to=period.end,
            limit=limit,
            offset=offset,
        )
    show.print_page(
        page,
        noun="results",
        records=[r.to_dict() for r in page.items],
        table=lambda title: runs_table(page.items, title),
        json_output=json_output,
    )


@results_app.command("show")
def show_result(
    ctx: typer.Context,
    run_id: RunArg,
    trades: Annotated[
        int, typer.Option("--trades", min=0, help="A backtest: its last N trades.")
    ] = 10,
    top: Annotated[int, typer.Option("--top", min=1, help="A sweep: how many rows.")] = 10,
    sort: Annotated[str, typer.Option("--sort", help="A sweep: the metric to rank by.")] = "sharpe",
    ascending: Annotated[
        bool, typer.Option("--ascending", help="A sweep: rank the smallest first.")
    ] = False,
    min_trades: Annotated[
        int, typer.Option("--min-trades", min=0, help="A sweep: only rows with N+ trades.")
    ] = 0,
    json_output: JsonOpt = False,
) -> None:
    """A saved run's settings, metrics and trades (a sweep: its top rows), as it printed them."""
    from traderunner.domain.runs import RunKind

    with common.open_store(common.get_state(ctx).settings) as store:
        record, doc = _load(store, run_id)
    period = str(record.summary.get("period") or "") or "period not recorded"
    if record.kind is RunKind.SWEEP:
        if json_output:
            payload = {**_meta(record), "grid": record.params}
            payload.update(
                show.sweep_payload(
                    doc, sort=sort, top=top, ascending=ascending, min_trades=min_trades
                )
            )
            common.print_json(payload)
            return
        _print_where(record)
        show.print_sweep(
            doc,
            record.params,
            timeframe=record.timeframe,
            period=period,
            sort=sort,
            top=top,
            name=record.name,
            ascending=ascending,
            min_trades=min_trades,
        )
        return
    if json_output:
        common.print_json({**_meta(record), **doc})
        return
    _print_where(record)
    show.print_backtest(
        doc, timeframe=record.timeframe, period=period, name=record.name, trades=trades
    )


def _print_where(record: RunRecord) -> None:
    from traderunner.cli.render import short_time

    where = "run here" if record.origin.value == "local" else "run as a job"
    common.out_console().print(
        f"[dim]result {record.id} · {record.kind.value} {where} · owner "
        f"{record.owner or '(unknown)'} · saved {short_time(record.created_at)} UTC[/]"
    )


@results_app.command("export")
def export(
    ctx: typer.Context,
    run_id: RunArg,
    to: Annotated[
        Path, typer.Option("--to", help="Folder to write into (it must exist).", file_okay=False)
    ] = Path("."),
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format", "-f", help="csv and/or html (repeatable; default both).", show_default=False
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Write a run's CSV files (backtest: trades, equity; sweep: rows) and its HTML report."""
    from traderunner.domain.runs import RunKind
    from traderunner.errors import OptionError
    from traderunner.reports import run as run_report

    wanted = {f.strip().lower() for raw in formats or ["csv", "html"] for f in raw.split(",")}
    unknown = sorted(wanted - {"csv", "html"})
    if unknown or not wanted:
        raise OptionError(f"--format {', '.join(unknown)} is not known: use csv and/or html")
    with common.open_store(common.get_state(ctx).settings) as store:
        record, doc = _load(store, run_id)
        frames = store.runs.frames(record.id)
    stem = record.id[:12]
    written: list[Path] = []
    if record.kind is RunKind.SWEEP:
        if "csv" in wanted:
            import pandas as pd

            rows = pd.DataFrame(doc.get("rows") or [])
            written.append(_write(to / f"{stem}-rows.csv", lambda p: rows.to_csv(p, index=False)))
        if "html" in wanted:
            page = run_report.sweep_report(record, doc)
            written.append(_write(to / f"{stem}-report.html", lambda p: _text(p, page)))
    else:
        equity = frames.get("equity")
        if "csv" in wanted:
            trades = run_report.trades_csv(doc)
            written.append(_write(to / f"{stem}-trades.csv", lambda p: _text(p, trades)))
            if equity is not None:
                curve = run_report.equity_csv(equity)
                written.append(_write(to / f"{stem}-equity.csv", lambda p: _text(p, curve)))
        if "html" in wanted:
            page = run_report.backtest_report(record, doc, frames)
            written.append(_write(to / f"{stem}-report.html", lambda p: _text(p, page)))
    if json_output:
        common.print_json({"result_id": record.id, "files": [str(p) for p in written]})
        return
    out = common.out_console()
    for path in written:
        out.print(f"wrote {path}")


def _text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write(path: Path, write: Any) -> Path:
    common.write_atomically(path, write)
    return path


@results_app.command("delete")
def delete(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Result ids or unique prefixes.")],
    admin: AdminOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete saved runs (every id is checked first: nothing is deleted if one is wrong)."""
    from traderunner.domain.runs import ensure_may_change

    actor = common.default_owner()
    with common.open_store(common.get_state(ctx).settings) as store:
        chosen: list[str] = []
        for text in run_ids:
            rid = store.runs.resolve(text)
            record = store.runs.get(rid)
            if record is not None:
                ensure_may_change(record.owner, actor, is_admin=admin, what=f"result {rid}")
                chosen.append(rid)
        chosen = list(dict.fromkeys(chosen))
        deleted = store.runs.delete(chosen)
    if json_output:
        common.print_json({"deleted": chosen, "count": deleted})
        return
    common.out_console().print(f"deleted {deleted} result(s): {', '.join(chosen)}")


@results_app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Delete runs saved longer ago than this: 30d, 12h, 2w ...",
            show_default=False,
        ),
    ],
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Whose runs (default: yours; another's needs --admin)."),
    ] = None,
    admin: AdminOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete your runs saved longer ago than --older-than (an admin: anyone's, or --owner's)."""
    from traderunner.domain.runs import ensure_may_change

    age = parse_duration(older_than, "--older-than")
    actor = common.default_owner()
    if owner is not None:
        ensure_may_change(owner, actor, is_admin=admin, what=f"the results of {owner!r}")
    scope = owner if owner is not None else (None if admin else actor)
    before = datetime.now(UTC) - age
    with common.open_store(common.get_state(ctx).settings) as store:
        old = store.runs.older_than(before, owner=scope)
        ids = [r.id for r in old]
        deleted = 0 if dry_run else store.runs.delete(ids)
    if json_output:
        common.print_json(
            {"before": before.isoformat(), "dry_run": dry_run, "results": ids, "count": len(ids)}
        )
        return
    whose = "every owner's" if scope is None else f"{scope}'s"
    verb = "would delete" if dry_run else "deleted"
    common.out_console().print(
        f"{verb} {len(ids) if dry_run else deleted} of {whose} results saved before "
        f"{before:%Y-%m-%d %H:%M} UTC"
    )
