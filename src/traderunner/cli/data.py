"""``traderunner data ...``: import, generate, fetch, list and check market data in the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common
from traderunner.cli.render import series_table

if TYPE_CHECKING:
    from traderunner.config import Settings
    from traderunner.domain.timeframe import Timeframe
    from traderunner.marketdata.fetch import FetchReport
    from traderunner.marketdata.gaps import GapReport
    from traderunner.store import SeriesInfo, SeriesWrite, Store

data_app = typer.Typer(
    name="data",
    help="Import, generate and list market data in the store.",
    no_args_is_help=True,
)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]


def _one_symbol(value: str | None, command: str) -> str:
    """The one symbol a command takes (``--symbols``/``--symbol``), upper-cased; "" if none."""
    from traderunner.errors import OptionError

    names = common.split_symbols([value] if value else [])
    if len(names) > 1:
        raise OptionError(
            f"{command} takes one symbol, got {len(names)} ({', '.join(names)}): give one --symbol"
        )
    return names[0] if names else ""


def _series_dict(info: SeriesInfo) -> dict[str, Any]:
    return {
        "symbol": info.symbol,
        "timeframe": str(getattr(info.timeframe, "value", info.timeframe)),
        "source": info.source,
        "bars": info.count,
        "first": common.iso_ns(info.first_ns),
        "last": common.iso_ns(info.last_ns),
        "version": info.version,
        "generation": info.generation,
    }


@data_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet file with time, open, high, low, close[, volume].",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbols",
            "--symbol",
            "-s",
            help="The file's symbol (default: the file name, upper-cased).",
            show_default=False,
        ),
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe",
            "-t",
            help="Bar size of the file: M1 M5 M15 M30 H1 H4 D1 (default: told from the "
            "bar times; a given one must agree with them).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Validate a candle file, then write it to the store in one transaction."""
    from traderunner.marketdata import import_file

    state = common.get_state(ctx)
    tf = common.parse_timeframe(timeframe) if timeframe is not None else None
    name = _one_symbol(symbol, "data import") or common.file_stem(file).strip().upper()
    with common.open_store(state.settings) as store:
        candles, write = import_file(store, file, name, tf)
    info = write.series
    assert info is not None
    if json_output:
        common.print_json({"imported": str(file), "series": _series_dict(info)})
        return
    out = common.out_console()
    out.print(series_table([info], title=f"imported {file.name}"))
    how = "told from the bar times" if candles.meta.get("timeframe_inferred") else "as given"
    out.print(f"timeframe {info.timeframe.value} ({how}); {_write_text(write)}", markup=False)


def _write_text(write: SeriesWrite) -> str:
    if write.kind == "unchanged":
        return f"nothing changed: all {write.bars:,} bars were stored already (version kept)"
    changed = f", {write.changed:,} changed" if write.changed else ""
    return f"{write.inserted:,} new bars{changed}"


@data_app.command("delete")
def delete(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Option("--symbol", help="Stored symbol, e.g. AAPL.")],
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Its bar size: M1 M5 M15 M30 H1 H4 D1.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Delete a stored series: its candles, its series row and its cached copies.

    Asks first unless --yes. Exit 1 when not confirmed (nothing deleted), 2 on bad input.
    """
    state = common.get_state(ctx)
    name = symbol.strip().upper()
    tf = common.parse_timeframe(timeframe)
    with common.open_store(state.settings) as store:
        found = store.candles.require(name, tf)
        what = (
            f"{found.count:,} {tf.value} bars of {name} ({common.short_ns(found.first_ns)} .. "
            f"{common.short_ns(found.last_ns)}, {found.source})"
        )
        if not yes and not _confirm(f"delete {what}?"):
            common.err_console().print(
                "nothing deleted: answer y, or pass --yes to delete without asking", markup=False
            )
            raise typer.Exit(1)
        info = store.candles.delete(name, tf)
        cache = _forget_cached(state.settings, store, info)
    if json_output:
        common.print_json({"deleted": _series_dict(info), "cache": cache})
        return
    common.out_console().print(
        f"deleted {info.count:,} {tf.value} bars of {name} and its series; cache: {cache}",
        markup=False,
    )


def _confirm(question: str) -> bool:
    try:
        return bool(typer.confirm(question, default=False, err=True))
    except (typer.Abort, EOFError, OSError):  # end of input, or none to read: no answer is no
        return False


def _forget_cached(settings: Settings, store: Store, info: SeriesInfo) -> str:
    """Drop the cached copies of a deleted series; says what became of them."""
    from traderunner.cache import MarketCache
    from traderunner.cli.cache import cache_client
    from traderunner.errors import RedisError
    from traderunner.redisdb.keys import Keys

    try:
        client = cache_client(settings, "traderunner-data-delete")
    except RedisError:
        # Nothing can read them again: a new import gets a new generation (and key).
        return "not running (nothing to drop; the latest bar it may hold expires in one bar)"
    cache = MarketCache(client, Keys(settings.redis_prefix), store, local=False)
    try:
        dropped = cache.forget(info.symbol, info.timeframe, info.generation)
    finally:
        cache.close()
        client.close()
    return "dropped" if dropped else "unreachable (its copies expire on their own)"


@data_app.command("demo")
def demo(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols",
            "-s",
            help="Symbols to generate, comma-separated (default: the demo set).",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=3650, help="Calendar days of data.")
    ] = 120,
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Bar size: M1 M5 M15 M30 H1 H4 D1.")
    ] = "M5",
    json_output: JsonOpt = False,
) -> None:
    """Load SYNTHETIC demo candles (seeded random walks, not market prices) into the store."""
    from traderunner.marketdata import DEMO_SYMBOLS, load_demo

    state = common.get_state(ctx)
    tf = common.parse_timeframe(timeframe)
    wanted = common.split_symbols(symbols) or list(DEMO_SYMBOLS)
    with common.open_store(state.settings) as store:
        infos = load_demo(store, wanted, tf, days)
    if json_output:
        common.print_json({"series": [_series_dict(i) for i in infos], "synthetic": True})
        common.warn_synthetic([i.symbol for i in infos], console=common.err_console())
        return
    out = common.out_console()
    out.print(series_table(infos, title="demo data loaded"))
    common.warn_synthetic([i.symbol for i in infos], console=out)


@data_app.command("list")
def list_(
    ctx: typer.Context,
    json_output: JsonOpt = False,
) -> None:
    """List the stored candle series: symbol, timeframe, source, bars, first, last, version."""
    state = common.get_state(ctx)
    with common.open_store(state.settings) as store:
        series = store.candles.list_series()
    if json_output:
        common.print_json({"series": [_series_dict(i) for i in series]})
        return
    out = common.out_console()
    if not series:
        out.print(
            "no candles stored yet: run 'traderunner data demo' or 'traderunner data import FILE'"
        )
        return
    out.print(series_table(series, title=f"{len(series)} series in the store"))


# ------------------------------------------------------------------ fetch and gaps
@contextmanager
def _open_provider(name: str, settings: Settings, timeframe: Timeframe) -> Iterator[Any]:
    """The provider for ``--provider``: EODHD with the shared limiter and response cache."""
    from traderunner.marketdata.pipeline import check_provider, open_provider

    key = check_provider(name)
    if key == "eodhd":
        from traderunner.marketdata.providers.eodhd import check_timeframe

        check_timeframe(timeframe)
    if key == "eodhd" and settings.eodhd_token.get_secret_value().strip():
        from traderunner.cli.services import ensure_redis

        ensure_redis(settings)  # the quota is shared through the durable Redis
    with open_provider(key, settings, timeframe) as provider:
        yield provider


def _span(lo: int, hi: int) -> dict[str, str]:
    return {"from": common.iso_ns(lo), "to": common.iso_ns(hi)}


def _fetch_dict(report: FetchReport, provider: str) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "provider": provider,
        "timeframe": report.timeframe.value,
        **_span(report.start_ns, report.end_ns),
        "bars_written": report.bars_written,
        "requests": report.requests,
        "cache_hits": report.cache_hits,
        "skipped_bars": report.skipped_bars,
        "warnings": list(report.warnings),
        "quota_resets_at": None
        if report.quota_resets_at is None
        else common.iso_ns(int(report.quota_resets_at) * 1_000_000_000),
        "symbols": [
            {
                "symbol": s.symbol,
                "ok": s.ok,
                "bars_written": s.bars_written,
                "requests": s.requests,
                "cache_hits": s.cache_hits,
                "skipped_bars": s.skipped_bars,
                "empty_chunks": s.empty_chunks,
                "warnings": list(s.warnings),
                "asked": [_span(lo, hi) for lo, hi in s.asked],
                "missing": [_span(m.start_ns, m.end_ns) | {"reason": m.reason} for m in s.missing],
                "error": s.error,
            }
            for s in report.symbols
        ],
    }


@data_app.command("fetch")
def fetch(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols",
            "-s",
            help="Symbols as CODE.EXCHANGE, comma-separated, e.g. AAPL.US,TSLA.US.",
            show_default=False,
        ),
    ] = None,
    provider: Annotated[
        str, typer.Option("--provider", help="eodhd, or synthetic (generated, offline).")
    ] = "eodhd",
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Bar size: M1 M5 H1 D1 (EODHD).")
    ] = "M5",
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day (YYYY-MM-DD or ISO time, UTC).", show_default=False),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day, inclusive (default: now).", show_default=False),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Fetch candles into the store, asking only for what it lacks (rerun to resume).

    Every chunk is stored as it arrives. Exit 1 when something could not be fetched (the
    report says what is stored and what is missing), 2 on bad input.
    """
    from datetime import UTC, datetime

    from traderunner.domain.period import Period
    from traderunner.errors import DataRangeError, OptionError
    from traderunner.marketdata.fetch import fetch_to_store

    state = common.get_state(ctx)
    wanted = common.split_symbols(symbols)
    if not wanted:
        raise OptionError("--symbols is required, e.g. --symbols AAPL.US,TSLA.US")
    if not start or not start.strip():
        raise DataRangeError("--from is required: the first day to fetch, e.g. --from 2024-01-02")
    period = Period.parse(start, end)
    tf = common.parse_timeframe(timeframe)
    assert period.start is not None  # --from is given
    with (
        _open_provider(provider, state.settings, tf) as source,
        common.open_store(state.settings) as store,
        common.progress_bar(common.show_progress(json_output), f"fetching {tf.value}") as bar,
    ):
        report = fetch_to_store(
            store,
            source,
            wanted,
            tf,
            period.start,
            period.end or datetime.now(UTC),
            progress=bar,
            refetch_sessions=state.settings.eodhd_refetch_sessions,
        )
    if json_output:
        common.print_json(_fetch_dict(report, provider.strip().lower()))
    else:
        _print_fetch(report)
        if source.name == "synthetic":
            common.warn_synthetic(wanted, console=common.out_console())
    if not report.ok:
        raise typer.Exit(1)


def _print_fetch(report: FetchReport) -> None:
    from datetime import UTC, datetime

    from rich.table import Table

    out = common.out_console()
    table = Table(title=f"fetched {report.timeframe.value}", title_justify="left")
    for column in ("symbol", "asked for", "bars written", "requests", "cache hits", "status"):
        table.add_column(column, justify="right" if column[0] in "brc" else "left")
    for s in report.symbols:
        asked = ", ".join(f"{common.short_ns(lo)} .. {common.short_ns(hi)}" for lo, hi in s.asked)
        status = "ok" if s.ok else "[red]incomplete[/]"
        table.add_row(
            s.symbol,
            asked or "nothing (all stored)",
            f"{s.bars_written:,}",
            str(s.requests),
            str(s.cache_hits),
            status,
        )
    out.print(table)
    for s in report.symbols:
        for m in s.missing:
            out.print(
                f"missing {s.symbol} {common.short_ns(m.start_ns)} .. "
                f"{common.short_ns(m.end_ns)}: {m.reason}",
                markup=False,
            )
    for s in report.symbols:
        if s.skipped_bars:
            out.print(
                f"{s.symbol}: {s.skipped_bars:,} bar(s) with a null price left out (EODHD "
                "sends them for thinly traded symbols)",
                markup=False,
            )
        if s.empty_chunks:
            out.print(
                f"{s.symbol}: EODHD had no bars in {s.empty_chunks} of the ranges asked "
                "(HTTP 404: empty range; 5-minute and hourly history starts in October 2020)",
                markup=False,
            )
    for warning in report.warnings:
        out.print(f"EODHD warned: {warning}", markup=False)
    if report.quota_resets_at is not None:
        when = datetime.fromtimestamp(report.quota_resets_at, tz=UTC)
        out.print(
            f"the EODHD daily call quota is spent; it resets at {when:%Y-%m-%d %H:%M} UTC "
            "(midnight GMT): run the same command again then",
            markup=False,
        )
    elif not report.ok:
        out.print("run the same command again to fetch only what is missing", markup=False)


def _gaps_dict(report: GapReport, first_ns: int | None, last_ns: int | None) -> dict[str, Any]:
    return {
        "symbol": report.symbol,
        "timeframe": report.timeframe.value,
        "bars": report.bars,
        "first": common.iso_ns(first_ns),
        "last": common.iso_ns(last_ns),
        "sessions_checked": report.sessions_checked,
        "clean": report.clean,
        "missing_sessions": [d.isoformat() for d in report.missing_sessions],
        "missing_runs": [
            {"from": a.isoformat(), "to": b.isoformat()} for a, b in report.missing_runs()
        ],
        "gaps": [
            {"session": g.session.isoformat(), **_span(g.start_ns, g.end_ns), "bars": g.bars}
            for g in report.gaps
        ],
        "missing_bars": report.missing_bars,
        "duplicates": [common.iso_ns(t) for t in report.duplicates],
        "outside_session": report.outside_session,
    }


@data_app.command("gaps")
def gaps(
    ctx: typer.Context,
    symbol: Annotated[
        str, typer.Option("--symbols", "--symbol", "-s", help="Stored symbol, e.g. AAPL.US.")
    ],
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Bar size: M1 M5 M15 M30 H1 H4 D1.")
    ] = "M5",
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="Check from this day (default: first bar).", show_default=False
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Check to this day (default: last bar).", show_default=False),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Missing sessions, missing bars inside sessions and duplicates of a stored series.

    Sessions are US equity hours (09:30-16:00 New York, weekdays); holidays are not known, so
    a single missing weekday is usually one.
    """
    from traderunner.domain.period import Period
    from traderunner.marketdata.gaps import find_gaps

    state = common.get_state(ctx)
    name = _one_symbol(symbol, "data gaps")
    tf = common.parse_timeframe(timeframe)
    period = Period.parse(start, end)
    with common.open_store(state.settings) as store:
        candles = store.candles.load(name, tf, period.start_ns, period.end_ns)
    report = find_gaps(candles, tf, start_ns=period.start_ns, end_ns=period.end_ns)
    first = int(candles.ts[0]) if len(candles) else None
    last = int(candles.ts[-1]) if len(candles) else None
    if json_output:
        common.print_json(_gaps_dict(report, first, last))
        return
    _print_gaps(report, first, last)


def _print_gaps(report: GapReport, first: int | None, last: int | None) -> None:
    out = common.out_console()
    out.print(
        f"{report.symbol} {report.timeframe.value}: {report.bars:,} bars, "
        f"{common.short_ns(first)} .. {common.short_ns(last)}, "
        f"{report.sessions_checked} weekday sessions checked",
        markup=False,
    )
    runs = report.missing_runs()
    shown = ", ".join(
        a.isoformat() if a == b else f"{a.isoformat()} .. {b.isoformat()}" for a, b in runs[:20]
    )
    more = f" and {len(runs) - 20} more" if len(runs) > 20 else ""
    out.print(
        f"missing sessions: {len(report.missing_sessions)}"
        + (f" ({shown}{more}; a single weekday is usually a holiday)" if runs else ""),
        markup=False,
    )
    out.print(
        f"gaps inside sessions: {len(report.gaps)} ({report.missing_bars:,} bars missing)",
        markup=False,
    )
    for g in report.gaps[:20]:
        out.print(
            f"  {g.session.isoformat()}: {g.bars} bar(s) from {common.short_ns(g.start_ns)} "
            f"to {common.short_ns(g.end_ns)}",
            markup=False,
        )
    if len(report.gaps) > 20:
        out.print(f"  ... {len(report.gaps) - 20} more (use --json for all)", markup=False)
    out.print(f"duplicates: {len(report.duplicates)}", markup=False)
    if report.outside_session:
        out.print(f"bars outside session hours: {report.outside_session:,}", markup=False)
