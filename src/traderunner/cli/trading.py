"""``traderunner stream``, ``trader [halt|resume]``, ``orders``, ``positions``, ``account``,
``signals tail``: the live path's processes and what they recorded.

``stream`` builds the feed (marketdata) and hands it to the stream service (signals); the
two services never import each other or marketdata (they talk through the bus).
"""

from __future__ import annotations

import signal as os_signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from traderunner.cli import common
from traderunner.errors import DataRangeError, UserInputError

if TYPE_CHECKING:
    from traderunner.config import Settings
    from traderunner.redisdb.connection import RedisClients

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
AccountOpt = Annotated[
    str | None, typer.Option("--account", help="Only this paper account.", show_default=False)
]


def _clients(settings: Settings, name: str) -> RedisClients:
    from traderunner.cli.services import ensure_redis
    from traderunner.redisdb.connection import open_clients

    ensure_redis(settings)
    return open_clients(settings, name=name)


def _default_name(service: str) -> str:
    return f"{service}-{socket.gethostname()}"


# -- stream --------------------------------------------------------------------------------


def stream(
    ctx: typer.Context,
    replay: Annotated[
        bool, typer.Option("--replay", help="Replay stored candles (exits after the last one).")
    ] = False,
    start: Annotated[str | None, typer.Option("--from", help="Replay from (date or ISO).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Replay to, inclusive.")] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0, help="Market seconds per real second; 0 = no waiting."),
    ] = 0.0,
    symbols: Annotated[
        list[str] | None,
        typer.Option("--symbols", "-s", help="Symbols (default: the live strategies')."),
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Bar size (default: the live one).")
    ] = None,
    feed_kind: Annotated[
        str,
        typer.Option(
            "--feed",
            help="Live feed without --replay: poll (EODHD intraday, M1/M5/H1) or ws (EODHD "
            "real-time trades into bars).",
        ),
    ] = "poll",
    max_wait: Annotated[
        float | None,
        typer.Option(
            "--max-wait",
            min=0,
            help="With --replay and --speed: wait at most this many seconds between two "
            "candles (nights and weekends).",
            show_default=False,
        ),
    ] = None,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="With --replay: after the last candle keep running, idle, until SIGTERM or "
            "Ctrl-C (a supervised demo, as 'traderunner up' runs it).",
        ),
    ] = False,
) -> None:
    """Run the stream service: feed → store → cache → bus, live strategies → signals."""
    import asyncio
    import contextlib

    from traderunner.bus import BusOptions, Publisher
    from traderunner.cache import MarketCache
    from traderunner.domain.period import Period
    from traderunner.domain.timeframe import Timeframe
    from traderunner.signals import StreamService

    state = common.get_state(ctx)
    settings = state.settings
    state.load_strategies()
    if feed_kind not in ("poll", "ws"):
        raise UserInputError(f"--feed must be poll or ws, not {feed_kind!r}")
    if not replay and (start is not None or end is not None):
        raise UserInputError("--from and --to are for --replay: a live feed starts now")
    if max_wait is not None and not replay:
        raise UserInputError("--max-wait is for --replay: a live feed waits for the market")
    if keep_running and not replay:
        raise UserInputError("--keep-running is for --replay: a live feed runs until stopped")
    period = Period.parse(start, end)
    with common.open_store(settings) as store:
        lives = store.live.list()
        frames = sorted({s.timeframe for s in lives})
        if timeframe is not None:
            tf = Timeframe.parse(timeframe)
        elif len(frames) == 1:
            tf = Timeframe.parse(frames[0])
        elif not frames:
            raise UserInputError(
                "no live strategies and no --timeframe: add one with 'traderunner live add' "
                "or pass --timeframe and --symbols"
            )
        else:
            raise UserInputError(
                f"the live strategies use several timeframes ({', '.join(frames)}): run one "
                "stream per timeframe with --timeframe"
            )
        chosen = common.split_symbols(symbols) or sorted(
            {sym for s in lives if s.timeframe == tf.value for sym in s.symbols}
        )
        if not chosen:
            raise UserInputError(f"no symbols for {tf.value}: pass --symbols or add a live one")
        from traderunner.marketdata.feeds import PollingFeed, ReplayFeed, WebSocketFeed

        resources = contextlib.ExitStack()
        feed: Any
        if replay:
            feed = ReplayFeed.from_store(
                store,
                chosen,
                tf,
                start_ns=period.start_ns,
                end_ns=period.end_ns,
                speed=speed,
                max_sleep=max_wait,
            )
        elif feed_kind == "ws":
            if not settings.eodhd_token.get_secret_value().strip():
                raise UserInputError(
                    "no EODHD API token: set TRADERUNNER_EODHD_TOKEN for the live feed"
                )
            feed = WebSocketFeed(settings.eodhd_token, chosen, tf)
        else:
            from traderunner.marketdata.pipeline import open_provider

            provider = resources.enter_context(open_provider("eodhd", settings, tf))
            feed = PollingFeed(provider, chosen, tf)
        clients = _clients(settings, "traderunner-stream")
        cache = MarketCache(
            clients.cache,
            clients.keys,
            store,
            local=False,
            series_ttl=settings.cache_series_ttl,
            config_ttl=settings.cache_config_ttl,
        )
        publisher = Publisher(clients.durable, clients.keys, BusOptions.from_settings(settings))
        service = StreamService(cache, publisher, replay=replay)
        err = common.err_console()
        what = (
            f"replaying {', '.join(chosen)} {tf.value} {period.describe()} at speed {speed:g}"
            if replay
            else f"following {', '.join(chosen)} {tf.value} live ({feed_kind}; Ctrl-C stops)"
        )
        err.print(f"stream: {what}; {len(lives)} live strategies", markup=False)

        async def main() -> int:
            loop = asyncio.get_running_loop()
            stopping = asyncio.Event()
            closing: list[asyncio.Future[Any]] = []  # kept, so the task is not collected

            def on_signal() -> None:
                stopping.set()
                closing.append(asyncio.ensure_future(feed.aclose()))

            for sig in (os_signal.SIGTERM, os_signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
            handled = await service.consume(feed)
            if keep_running and not stopping.is_set():
                # The replay is over, which is not a failure: a supervisor sees the service
                # running (idle) rather than a child that exited.
                err.print(f"stream: replay done ({handled} bars); idle until stopped", markup=False)
                await stopping.wait()
            return handled

        try:
            done = asyncio.run(main())
        finally:
            cache.close()
            clients.close()
            resources.close()
    err.print(
        f"stream: {done} bars handled, {service.published_signals} signals published",
        markup=False,
    )


# -- trader --------------------------------------------------------------------------------

trader_app = typer.Typer(
    help="The automatic paper trader (run it with no subcommand), and its kill switch.",
    invoke_without_command=True,
)


@trader_app.callback()
def trader(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Consumer name, stable across restarts (default per host)."),
    ] = None,
    exit_when_idle: Annotated[
        float | None,
        typer.Option(
            "--exit-when-idle",
            min=0.1,
            help="Exit once nothing was waiting for this many seconds (replays, tests).",
        ),
    ] = None,
) -> None:
    """Run the trader: signals → risk checks → orders; candles → paper fills → positions."""
    if ctx.invoked_subcommand is not None:
        return
    from traderunner.bus import BusOptions
    from traderunner.ratelimit.limiter import Quota, RateLimiter
    from traderunner.trader import KillSwitch, Notifier, RiskChecks, RiskLimits, TraderService

    state = common.get_state(ctx)
    settings = state.settings
    state.load_strategies()
    limits = RiskLimits.from_settings(settings)
    with common.open_store(settings) as store:
        clients = _clients(settings, "traderunner-trader")
        limiter: RateLimiter | None = None
        take = None
        if limits.max_orders_per_minute:
            limiter = RateLimiter(
                clients.urls.durable,
                name="trader-orders",
                quotas=[Quota(limits.max_orders_per_minute, 60, "minute")],
                prefix=settings.redis_prefix,
            )
            bound = limiter

            def take(account: str) -> bool:
                return bound.try_acquire(subject=account)

        kill = KillSwitch(clients.durable, clients.keys, max_age=0.25)
        risk = RiskChecks(limits, kill, take)
        service = TraderService(
            store,
            clients.durable,
            clients.keys,
            risk,
            name=name or _default_name("trader"),
            cache=clients.cache,
            notifier=Notifier.from_settings(settings),
            options=BusOptions.from_settings(settings),
            signal_wait=settings.trader_signal_wait,
        )
        stop = threading.Event()
        for sig in (os_signal.SIGTERM, os_signal.SIGINT):
            os_signal.signal(sig, lambda *_: stop.set())
        err = common.err_console()
        err.print(f"trader {service.name}: consuming signals and candles", markup=False)
        idle_since: list[float | None] = [None]

        def should_stop() -> bool:
            if stop.is_set():
                return True
            if exit_when_idle is None:
                return False
            if not service.idle():
                idle_since[0] = None
                return False
            since = idle_since[0] = idle_since[0] or time.monotonic()
            return time.monotonic() - since >= exit_when_idle

        try:
            service.run(should_stop)
        finally:
            service.close()
            if limiter is not None:
                limiter.close()
            clients.close()
    c = service.counters
    err.print(
        f"trader: {c.signals} signals, {c.orders} orders ({c.rejected} rejected), "
        f"{c.bars} bars, {c.fills} fills",
        markup=False,
    )


@trader_app.command("halt")
def trader_halt(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown with every rejection).")] = (
        "halted by hand"
    ),
) -> None:
    """Set the kill switch: no order that opens or enlarges a position until 'resume'."""
    from traderunner.trader.killswitch import KillSwitch

    settings = common.get_state(ctx).settings
    clients = _clients(settings, "traderunner-halt")
    try:
        done = KillSwitch(clients.durable, clients.keys).halt(common.default_owner(), reason)
    finally:
        clients.close()
    common.out_console().print(
        "kill switch set: the trader refuses new positions" if done else "already halted",
        markup=False,
    )


@trader_app.command("resume")
def trader_resume(ctx: typer.Context) -> None:
    """Release the kill switch."""
    from traderunner.trader.killswitch import KillSwitch

    settings = common.get_state(ctx).settings
    clients = _clients(settings, "traderunner-resume")
    try:
        done = KillSwitch(clients.durable, clients.keys).resume()
    finally:
        clients.close()
    common.out_console().print(
        "kill switch released" if done else "the kill switch was not set", markup=False
    )


# -- what the trader recorded --------------------------------------------------------------


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    common.out_console().print(table)


def orders(
    ctx: typer.Context,
    account: AccountOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="The newest N.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """The paper trader's orders (one per signal) and their fills."""
    with common.open_store(common.get_state(ctx).settings) as store:
        found = store.trading.orders(account=account, limit=limit)
        fills = store.trading.fills(account=account)
    if json_output:
        common.print_json(
            {"orders": [o.to_dict() for o in found], "fills": [f.to_dict() for f in fills]}
        )
        return
    _table(
        "orders",
        ["id", "bar", "account", "live", "symbol", "target", "status", "reason"],
        [
            [
                o.id,
                common.short_ns(o.bar_ns),
                o.account,
                o.live,
                o.symbol,
                f"{o.previous:+d} -> {o.target:+d}",
                o.status.value,
                o.reason,
            ]
            for o in found
        ],
    )


def positions(ctx: typer.Context, account: AccountOpt = None, json_output: JsonOpt = False) -> None:
    """Positions per sleeve (account, live strategy, symbol)."""
    with common.open_store(common.get_state(ctx).settings) as store:
        found = store.trading.positions(account=account)
    if json_output:
        common.print_json({"positions": [p.to_dict() for p in found]})
        return
    _table(
        "positions",
        ["account", "live", "symbol", "units", "entry", "last", "value", "unrealised", "as of"],
        [
            [
                p.account,
                p.live,
                p.symbol,
                f"{p.units:g}",
                f"{p.entry_price:.4f}",
                f"{p.last_price:.4f}",
                f"{p.value:.2f}",
                f"{p.unrealized_pnl:.2f}",
                common.short_ns(p.bar_ns),
            ]
            for p in found
            if p.units != 0.0
        ],
    )


def account(ctx: typer.Context, name: AccountOpt = None, json_output: JsonOpt = False) -> None:
    """Cash, equity, realised and unrealised PnL of the paper accounts."""
    with common.open_store(common.get_state(ctx).settings) as store:
        found = [a for a in store.trading.accounts() if name is None or a.name == name]
        rejected = store.trading.rejections(account=name)
    if name is not None and not found:
        raise DataRangeError(f"no paper account {name!r} yet: the trader creates it")
    if json_output:
        common.print_json(
            {
                "accounts": [a.to_dict() for a in found],
                "rejections": [r.to_dict() for r in rejected],
            }
        )
        return
    _table(
        "accounts",
        ["account", "start cash", "cash", "equity", "realised", "unrealised", "day start"],
        [
            [
                a.name,
                f"{a.start_cash:.2f}",
                f"{a.cash:.2f}",
                f"{a.equity:.2f}",
                f"{a.realized_pnl:.2f}",
                f"{a.to_dict()['unrealized_pnl']:.2f}",
                f"{a.day_start_equity:.2f} ({a.day})",
            ]
            for a in found
        ],
    )


signals_app = typer.Typer(help="The signals on the bus.", no_args_is_help=True)


@signals_app.command("tail")
def signals_tail(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", "-n", min=0, help="Earlier ones shown.")] = 10,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep following.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Show the last signals, then follow new ones live (the Pub/Sub copy: ephemeral)."""
    import json

    from traderunner.bus import LiveFeed, recent, topics

    settings = common.get_state(ctx).settings
    clients = _clients(settings, "traderunner-signals-tail")
    out = common.out_console()

    def show(envelope: Any) -> None:
        p = envelope.payload
        if json_output:
            print(json.dumps({"id": envelope.id, **p}), flush=True)
            return
        out.print(
            f"{common.short_ns(p.get('bar_ns'))}  {p.get('live')}  {p.get('symbol')}  "
            f"{p.get('previous', 0):+d} -> {p.get('target', 0):+d}  @ {p.get('close')}",
            markup=False,
        )

    try:
        for envelope in recent(clients.durable, clients.keys, topics.SIGNALS, count):
            show(envelope)
        if not follow:
            return
        with LiveFeed(clients.durable, clients.keys, [topics.SIGNALS]) as feed:
            for envelope in feed:
                show(envelope)
    except KeyboardInterrupt:
        return
    finally:
        clients.close()
