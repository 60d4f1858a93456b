"""The trader on real Valkey and a real store, fed by hand the messages the stream publishes:
idempotency by signal id, each risk check and its rejection record, the kill switch, and
notifications to a local HTTP receiver (webhook and Telegram's bot API) that never block it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.redishelpers import RedisPair
from traderunner.bus import Envelope, topics
from traderunner.cache.snapshots import read_snapshot
from traderunner.domain.live import CandleMessage, LiveStrategy, SignalMessage
from traderunner.ratelimit.limiter import Quota, RateLimiter
from traderunner.trader import KillSwitch, Notifier, RiskLimits, Telegram
from traderunner.trader.risk import parse_hours

from .livehelpers import Live, live_env

T0 = 1_750_000_000 * 1_000_000_000 // (300 * 10**9) * (300 * 10**9)  # a 5-minute boundary
STEP = 300 * 10**9


def bar_ns(i: int) -> int:
    return T0 + i * STEP


def add(env: Live, name: str, symbols: tuple[str, ...] = ("AAA",), **options: Any) -> None:
    env.add(LiveStrategy(name, "sma_cross", symbols, "M5", options=options, account=f"acct-{name}"))


def send(
    env: Live,
    i: int,
    symbol: str = "AAA",
    price: float = 100.0,
    signals: list[Envelope] | None = None,
) -> None:
    """Bar ``i`` of ``symbol`` and the signals it caused, as the stream publishes them."""
    signals = signals or []
    candle = CandleMessage(
        symbol, "M5", bar_ns(i), price, price * 1.001, price * 0.999, price, 1.0,
        signals=tuple(e.id for e in signals),
    )  # fmt: skip
    env.stream.publisher.publish_many(
        [*signals, Envelope.new(topics.candles("M5"), topics.CANDLE, candle.to_payload())]
    )


def signal(
    name: str, i: int, target: int, previous: int, symbol: str = "AAA", ident: str | None = None
) -> Envelope:
    message = SignalMessage(
        name, "sma_cross", f"acct-{name}", symbol, "M5", bar_ns(i), target, previous, 100.0
    )
    return Envelope.new(topics.SIGNALS, topics.SIGNAL, message.to_payload(), id=ident)


def statuses(env: Live, name: str) -> list[str]:
    return [o.status.value for o in env.store.trading.orders(account=f"acct-{name}")]


def test_a_redelivered_signal_never_trades_twice(redis_pair: RedisPair, tmp_path: Path) -> None:
    with live_env(redis_pair, tmp_path) as env:
        add(env, "idem")
        env.trader.start()
        first = signal("idem", 0, 1, 0, ident="sig-1")
        send(env, 0, signals=[first])
        # The same signal again (a stream restarted mid-bar, or a trader that died before XACK)
        send(env, 1, signals=[signal("idem", 0, 1, 0, ident="sig-1")])
        send(env, 2)
        env.wait_idle()
        orders = env.store.trading.orders(account="acct-idem")
        assert [o.signal_id for o in orders] == ["sig-1"]
        fills = env.store.trading.fills(account="acct-idem")
        assert [(f.side, f.bar_ns) for f in fills] == [("buy", bar_ns(1))]
        assert env.trader.counters.signals == 2  # both deliveries were handled, one traded
        (pos,) = env.store.trading.positions(account="acct-idem")
        assert pos.units > 0 and pos.bar_ns == bar_ns(2)
        # the screens' copy in the cache Redis
        env.trader.snapshot("acct-idem", force=True)
        assert env.trader.cache is not None
        snap = read_snapshot(env.trader.cache, env.keys, "acct-idem")
        assert snap is not None and snap["account"]["equity"] == pytest.approx(pos.equity)
        assert [p["units"] for p in snap["positions"]] == [pos.units]


def test_each_risk_check_refuses_with_a_record(redis_pair: RedisPair, tmp_path: Path) -> None:
    limits = RiskLimits(max_position_value=60_000.0, max_gross_exposure=150_000.0)
    with live_env(redis_pair, tmp_path, limits=limits) as env:
        add(env, "big", cash=100_000.0)  # a whole sleeve of 100000 > 60000
        add(env, "small", symbols=("AAA", "BBB", "CCC"), cash=150_000.0, size=0.8)  # 40000 each
        env.trader.start()
        send(env, 0, signals=[signal("big", 0, 1, 0)])
        send(env, 0, "BBB", signals=[signal("small", 0, 1, 0, "BBB")])
        send(env, 0, "CCC", signals=[signal("small", 0, 1, 0, "CCC")])
        send(env, 1, "BBB")
        send(env, 1, "CCC")
        env.wait_idle()
        # 40000 + 40000 + the third 40000 would be 120000 < 150000: let a fourth one exceed it
        add(env, "more", symbols=("DDD",), cash=200_000.0, size=0.5)  # 100000
        send(env, 1, "DDD", signals=[signal("more", 1, 1, 0, "DDD")])
        env.wait_idle()
        checks = {(r.live, r.check) for r in env.store.trading.rejections()}
        assert ("big", "max_position_value") in checks
        assert ("more", "max_position_value") in checks  # 100000 > 60000 too
        assert statuses(env, "big") == ["rejected"]
        assert statuses(env, "small") == ["filled", "filled"]
        # an exit is never refused for size
        send(env, 2, "BBB", signals=[signal("small", 2, 0, 1, "BBB")])
        send(env, 3, "BBB")
        env.wait_idle()
        assert statuses(env, "small") == ["filled", "filled", "filled"]


def test_gross_exposure_orders_per_minute_and_hours(redis_pair: RedisPair, tmp_path: Path) -> None:
    limiter = RateLimiter(
        redis_pair.durable.url, name="trader-orders", quotas=[Quota(2, 60, "minute")],
        prefix="tlim" + tmp_path.name[-6:] + ":",
    )  # fmt: skip
    limits = RiskLimits(max_gross_exposure=100_000.0, max_orders_per_minute=2)
    with live_env(redis_pair, tmp_path, limits=limits) as env:
        env.trader.risk.take_order = lambda account: limiter.try_acquire(subject=account)
        add(env, "g", symbols=("AAA", "BBB", "CCC"), cash=180_000.0)  # 60000 a sleeve
        env.trader.start()
        send(env, 0, "AAA", signals=[signal("g", 0, 1, 0, "AAA")])
        send(env, 1, "AAA")
        env.wait_idle()
        send(env, 1, "BBB", signals=[signal("g", 1, 1, 0, "BBB")])  # 60000 + 60000 > 100000
        env.wait_idle()
        add(env, "r", symbols=("X1", "X2", "X3"), cash=3000.0)
        for n, sym in enumerate(("X1", "X2", "X3")):
            send(env, n, sym, signals=[signal("r", n, 1, 0, sym)])
        env.wait_idle()
        checks = [(r.live, r.check) for r in env.store.trading.rejections()]
        assert ("g", "max_gross_exposure") in checks
        assert checks.count(("r", "max_orders_per_minute")) == 1  # the third of three
    limiter.close()
    hours = parse_hours("09:30-16:00", "America/New_York")
    assert hours is not None
    with live_env(redis_pair, tmp_path / "h", limits=RiskLimits(hours=hours)) as env:
        add(env, "h")
        env.trader.start()
        # T0 is 2025-06-15 15:05 UTC, a Sunday 11:05 in New York: inside the clock hours;
        # bar 150 is 12.5 h later, 23:35 New York: outside
        send(env, 150, signals=[signal("h", 150, 1, 0)])
        env.wait_idle()
        (rej,) = env.store.trading.rejections()
        assert rej.check == "trading_hours" and "09:30-16:00" in rej.reason


def test_kill_switch_by_hand_and_by_daily_loss(redis_pair: RedisPair, tmp_path: Path) -> None:
    with live_env(redis_pair, tmp_path, limits=RiskLimits(daily_loss_limit=0.05)) as env:
        kill = KillSwitch(env.trader.redis, env.keys)
        add(env, "k", direction="both")
        env.trader.start()
        assert kill.halt("test", "by hand")
        send(env, 0, signals=[signal("k", 0, 1, 0)])
        env.wait_idle()
        assert statuses(env, "k") == ["rejected"]
        (rej,) = env.store.trading.rejections()
        assert rej.check == "kill_switch" and "by hand" in rej.reason
        assert kill.resume()
        send(env, 1, signals=[signal("k", 1, 1, 0)])
        send(env, 2, price=100.0)
        send(env, 3, price=90.0)  # the long loses 10 %: more than the 5 % limit
        env.wait_idle()
        state = kill.state()
        assert state is not None and state["by"] == "daily_loss_limit"
        # an exit still goes through while halted; a new entry does not
        send(env, 4, price=90.0, signals=[signal("k", 4, 0, 1)])
        send(env, 5, price=90.0, signals=[signal("k", 5, -1, 0)])
        send(env, 6, price=90.0)
        env.wait_idle()
        assert statuses(env, "k") == ["rejected", "filled", "filled", "rejected"]
        (pos,) = env.store.trading.positions(account="acct-k")
        assert pos.units == 0.0


@dataclass
class Receiver:
    """A local HTTP server that records JSON POSTs; the first ``fail`` requests get a 500,
    and while ``hold`` is clear every request waits."""

    fail: int = 0
    hold: threading.Event = field(default_factory=threading.Event)
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attempts: int = 0

    def url(self, server: ThreadingHTTPServer) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    rec.hold.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec.hold.wait(30)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rec.attempts += 1
            if rec.attempts <= rec.fail:
                self.send_response(500)
                self.end_headers()
                return
            rec.got.append((self.path, body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec, rec.url(server)
    rec.hold.set()
    server.shutdown()


def test_notifications_reach_webhook_and_telegram_with_retries(
    redis_pair: RedisPair, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.fail = 2  # the first two attempts fail: retried
    rec.hold.clear()  # and the receiver hangs until released: the trader must not wait
    with live_env(redis_pair, tmp_path, limits=RiskLimits(max_position_value=1.0)) as env:
        env.trader.notifier = Notifier(
            [f"{url}/hook"], Telegram(url, "123:SECRET", "42"), retries=3, backoff=0.01
        )
        add(env, "n")
        env.trader.start()
        send(env, 0, signals=[signal("n", 0, 1, 0)])  # rejected: position above 1.0
        env.wait_idle()  # the trader finished while every notification is still held
        assert statuses(env, "n") == ["rejected"]
        assert rec.got == []
        kill = KillSwitch(env.trader.redis, env.keys)
        env.trader.risk.limits = RiskLimits()
        send(env, 1, signals=[signal("n", 1, 1, 0)])
        send(env, 2)
        env.wait_idle()
        assert statuses(env, "n") == ["rejected", "filled"]
        assert kill.state() is None
        rec.hold.set()
        assert env.trader.notifier.flush(timeout=30)
    hooks = [b for p, b in rec.got if p == "/hook"]
    chats = [b for p, b in rec.got if p == "/bot123:SECRET/sendMessage"]
    assert [h["event"] for h in hooks] == ["rejection", "fill"]
    assert hooks[0]["check"] == "max_position_value" and hooks[0]["live"] == "n"
    assert hooks[1]["side"] == "buy" and hooks[1]["symbol"] == "AAA"
    assert [c["chat_id"] for c in chats] == ["42", "42"]
    assert "rejected" in chats[0]["text"] and "fill: buy" in chats[1]["text"]
    assert rec.attempts == len(rec.got) + 2


def test_malformed_entries_are_dead_lettered_and_the_trader_carries_on(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    from traderunner.bus import read_dead

    with live_env(redis_pair, tmp_path) as env:
        add(env, "dl")
        env.trader.start()
        r = env.trader.redis
        r.xadd(env.keys.bus_stream(topics.SIGNALS), {"envelope": "{not json"})
        wrong = Envelope.new(topics.SIGNALS, topics.SIGNAL, signal("dl", 0, 1, 0).payload, v=9)
        r.xadd(env.keys.bus_stream(topics.SIGNALS), {"envelope": wrong.encode()})
        odd = Envelope.new(topics.candles("M5"), "tick", {"x": 1})
        r.xadd(env.keys.bus_stream(topics.candles("M5")), {"envelope": odd.encode()})
        send(env, 0, signals=[signal("dl", 0, 1, 0)])
        send(env, 1)
        env.wait_idle()
        assert statuses(env, "dl") == ["filled"]
        reasons = sorted(d.reason for d in read_dead(r, env.keys, topics.SIGNALS))
        assert reasons == ["bad_json", "wrong_version"]
        (dead,) = read_dead(r, env.keys, topics.candles("M5"))
        assert dead.reason == "unknown_type" and dead.group == "trader"
