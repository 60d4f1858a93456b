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
    import pandas as pd

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
#: The HTML report lists at most this many trades (the CSV has them all).
MAX_REPORT_TRADES = 5000


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
        import pandas as pd

        rows = pd.DataFrame(doc.get("rows") or [])
        if "csv" in wanted:
            written.append(_write(to / f"{stem}-rows.csv", lambda p: rows.to_csv(p, index=False)))
        if "html" in wanted:
            page = _sweep_report(record, doc, rows)
            written.append(_write(to / f"{stem}-report.html", lambda p: _text(p, page)))
    else:
        trades = show.trades_frame(doc.get("trade_list") or [])
        equity = frames.get("equity")
        if "csv" in wanted:
            written.append(_write(to / f"{stem}-trades.csv", lambda p: _trades_csv(doc, trades, p)))
            if equity is not None:
                written.append(_write(to / f"{stem}-equity.csv", lambda p: _equity_csv(equity, p)))
        if "html" in wanted:
            page = _backtest_report(record, doc, frames, trades)
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


def _trades_csv(doc: dict[str, Any], trades: pd.DataFrame, path: Path) -> None:
    import pandas as pd

    # The times as stored (ISO-8601 UTC), one row per trade; no trades still gives the header.
    records = doc.get("trade_list") or []
    if records:
        columns = list(trades.columns)
    else:
        from traderunner.engine.result import TRADE_COLUMNS

        columns = list(TRADE_COLUMNS)
    pd.DataFrame(records, columns=columns).to_csv(path, index=False)


def _equity_csv(equity: pd.DataFrame, path: Path) -> None:
    from traderunner.reports.figures import drawdown

    curve = equity.set_index("ts")["equity"]
    out = curve.to_frame("equity")
    out["drawdown"] = drawdown(curve)
    out.index = out.index.map(lambda t: t.isoformat())
    out.index.name = "time"
    out.to_csv(path)


def _lines(record: RunRecord, what: str) -> tuple[str, list[str]]:
    from traderunner.reports.text import settings_text

    named = f' "{record.name}"' if record.name else ""
    title = f"{what}{named}"
    where = ", ".join(record.symbols)
    period = str(record.summary.get("period") or "") or "period not recorded"
    return title, [f"{where} · {record.timeframe} · {period}", settings_text(record.options)]


def _footer(record: RunRecord) -> str:
    from traderunner import __version__

    return (
        f"traderunner {__version__} · result {record.id} · {record.origin.value} run by "
        f"{record.owner or '(unknown)'} · saved {record.created_at.isoformat()}"
    )


def _backtest_report(
    record: RunRecord, doc: dict[str, Any], frames: dict[str, pd.DataFrame], trades: pd.DataFrame
) -> str:
    import pandas as pd

    from traderunner.reports.figures import backtest_figure
    from traderunner.reports.html import metrics_html, report, table_html
    from traderunner.reports.text import format_metric, params_text

    title, lines = _lines(record, f"{record.strategy} {params_text(record.params)}")
    prices = {
        name.removeprefix("price:"): frame
        for name, frame in frames.items()
        if name.startswith("price:")
    }
    equity = frames.get("equity", pd.DataFrame({"ts": [], "equity": []}))
    figure = backtest_figure(equity, prices, trades if len(trades) else None, title=title)
    per_symbol = {s: v.get("metrics") or {} for s, v in (doc.get("per_symbol") or {}).items()}
    sections = [("metrics", metrics_html(record.metrics, per_symbol))]
    if len(trades):
        shown = trades.tail(MAX_REPORT_TRADES)
        columns = list(shown.columns)
        cells = [
            [
                format_metric("total_return", v) if c == "return" else _cell(v)
                for c, v in zip(columns, row, strict=True)
            ]
            for row in shown.itertuples(index=False, name=None)
        ]
        heading = (
            f"trades ({len(shown)} of {len(trades)})"
            if len(shown) < len(trades)
            else (f"trades ({len(trades)})")
        )
        sections.append((heading, table_html(columns, cells)))
    return report(
        title=title,
        lines=lines,
        figure=figure,
        sections=sections,
        synthetic=common.synthetic_symbols(doc.get("sources") or {}),
        footer=_footer(record),
    )


def _sweep_report(record: RunRecord, doc: dict[str, Any], rows: pd.DataFrame) -> str:
    from traderunner.reports.figures import sweep_figure
    from traderunner.reports.html import report, table_html
    from traderunner.reports.text import format_metric, grid_text

    sort = str(record.summary.get("rank_by") or "sharpe")
    title, lines = _lines(record, f"sweep {record.strategy} {grid_text(record.params)}")
    lines.append(f"{len(rows)} combinations ({int(doc.get('skipped') or 0)} skipped as invalid)")
    figure = sweep_figure(rows, record.params, sort, title=f"{sort} by parameters")
    payload = show.sweep_payload(doc, sort=sort, top=20)
    columns = [*record.params, *show.SWEEP_METRICS]
    cells = [
        [str(r.get(c, "")) if c in record.params else format_metric(c, r.get(c)) for c in columns]
        for r in payload["rows"]
    ]
    return report(
        title=title,
        lines=lines,
        figure=figure,
        sections=[(f"top {len(cells)} by {sort}", table_html(columns, cells))],
        synthetic=common.synthetic_symbols(doc.get("sources") or {}),
        footer=_footer(record),
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    stamp = getattr(value, "strftime", None)
    return stamp("%Y-%m-%d %H:%M") if callable(stamp) else str(value)


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
