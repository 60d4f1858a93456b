"""WebSocketFeed against a local WebSocket server speaking EODHD's real-time US trade format.

The server (websockets' own, on 127.0.0.1) checks ``api_token``, answers the status message,
takes ``{"action": "subscribe", "symbols": "AAPL,TSLA"}`` and pushes trade messages
(``s p v c dp ms t``, ``t`` in ms). It drops the first connection mid-stream and keeps TSLA
silent for one whole bar. Time runs 30 times faster than the wall clock for the feed and the
server alike, so an M1 bar lasts two seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from traderunner.domain.candles import Candle
from traderunner.domain.feeds import Feed
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import ProviderAuthError
from traderunner.marketdata.feeds.websocket import TradeBars, WebSocketFeed

SPEED = 30.0
START = datetime(2024, 3, 4, 14, 30, 30, tzinfo=UTC).timestamp()  # mid-bar: the first is partial
TOKEN = "ws-token"


class FastClock:
    def __init__(self) -> None:
        self.m0 = time.monotonic()

    def __call__(self) -> float:
        return START + (time.monotonic() - self.m0) * SPEED

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / SPEED)


@dataclass
class TradeServer:
    clock: FastClock
    drop_after: int = 40  # trades on the first connection, then it is cut
    quiet: tuple[str, int] = ("TSLA", 0)  # (ticker, bar open time) with no trade
    sent: list[dict[str, Any]] = field(default_factory=list)
    subscribes: list[str] = field(default_factory=list)
    connections: int = 0

    def check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        if f"api_token={TOKEN}" not in request.path:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        await ws.send(json.dumps({"status_code": 200, "message": "Authorized"}))
        command = json.loads(await ws.recv())
        assert command["action"] == "subscribe"
        self.subscribes.append(command["symbols"])
        symbols = command["symbols"].split(",")
        prices = itertools.count()
        sent_here = 0
        while True:
            now_ms = int(self.clock() * 1000)
            bar = now_ms // 1000 // 60 * 60
            for s in symbols:
                if (s, bar) == self.quiet:
                    continue
                n = next(prices)
                trade = {"s": s, "p": 100 + (n * 7919 % 101) / 10, "v": 1 + n % 5, "c": [12],
                         "dp": False, "ms": "open", "t": now_ms}  # fmt: skip
                await ws.send(json.dumps(trade))
                self.sent.append(trade)
                sent_here += 1
            if first and sent_here >= self.drop_after:
                await asyncio.sleep(0.05)
                await ws.close(code=1011, reason="maintenance")  # an abrupt server-side close
                return
            await asyncio.sleep(0.03)


def expected(sent: list[dict[str, Any]], symbol: str, bar: int, last: float | None) -> tuple:
    mine = [t for t in sent if t["s"] == symbol and t["t"] // 1000 // 60 * 60 == bar]
    if not mine:
        assert last is not None
        return (last, last, last, last, 0.0)
    p = [t["p"] for t in mine]
    return (p[0], max(p), min(p), p[-1], float(sum(t["v"] for t in mine)))


async def _run(bars_wanted: int) -> tuple[list[Candle], TradeServer, WebSocketFeed]:
    clock = FastClock()
    first_bar = int(START) // 60 * 60 + 60
    server = TradeServer(clock, quiet=("TSLA", first_bar + 120))
    async with serve(server.handle, "127.0.0.1", 0, process_request=server.check_token) as ws:
        port = ws.sockets[0].getsockname()[1]
        feed = WebSocketFeed(TOKEN, ["AAPL.US", "TSLA.US"], "M1", url=f"ws://127.0.0.1:{port}/ws/us",
                             grace_s=3.0, backoff=2.0, clock=clock, sleep=clock.sleep)  # fmt: skip
        assert isinstance(feed, Feed)
        got: list[Candle] = []
        async for candle in feed:
            got.append(candle)
            if len(got) >= bars_wanted * 2:
                await feed.aclose()
    return got, server, feed


def test_trades_become_bars_that_close_on_time_across_a_reconnect_each_once() -> None:
    bars, server, feed = asyncio.run(asyncio.wait_for(_run(5), 60))
    assert server.subscribes == ["AAPL,TSLA", "AAPL,TSLA"]  # resubscribed after the drop
    assert feed.connections == 2 and feed.bars.late_trades == 0
    first_bar = int(START) // 60 * 60 + 60  # the bar in progress at the start is skipped
    for symbol in ("AAPL.US", "TSLA.US"):
        mine = [b for b in bars if b.symbol == symbol]
        # On time, every minute, never twice: five consecutive bars.
        assert [b.ts_ns // 10**9 for b in mine] == [first_bar + 60 * i for i in range(5)]
        assert {(b.timeframe, b.source) for b in mine} == {(Timeframe.M1, "eodhd-ws")}
        last = None
        for b in mine:
            want = expected(server.sent, symbol.removesuffix(".US"), b.ts_ns // 10**9, last)
            assert (b.open, b.high, b.low, b.close, b.volume) == pytest.approx(want)
            last = b.close
    quiet = next(b for b in bars if b.symbol == "TSLA.US" and b.ts_ns // 10**9 == first_bar + 120)
    assert quiet.volume == 0 and quiet.open == quiet.close  # no trade: flat, still on time


def test_a_refused_token_raises_with_the_host_and_not_the_token() -> None:
    async def run() -> None:
        server = TradeServer(FastClock())
        async with serve(server.handle, "127.0.0.1", 0, process_request=server.check_token) as ws:
            port = ws.sockets[0].getsockname()[1]
            feed = WebSocketFeed("wrong-token-123", ["AAPL.US"], "M1",
                                 url=f"ws://127.0.0.1:{port}/ws/us")  # fmt: skip
            async for _ in feed:
                pass

    with pytest.raises(ProviderAuthError, match="HTTP 401") as caught:
        asyncio.run(asyncio.wait_for(run(), 30))
    assert "wrong-token-123" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_trade_bars_drop_late_trades_and_skip_the_partial_first_bar() -> None:
    bars = TradeBars(["AAPL.US"], Timeframe.M1)
    bars.start(120)
    assert not bars.add("AAPL.US", 1.0, 1, 119_000)  # the partial bar before the start
    assert bars.add("AAPL.US", 2.0, 1, 120_000) and bars.add("AAPL.US", 3.0, 2, 179_999)
    (bar,) = bars.close(120)
    assert (bar.ts_ns, bar.open, bar.high, bar.close, bar.volume) == (120 * 10**9, 2, 3, 3, 3)
    assert not bars.add("AAPL.US", 9.0, 1, 150_000) and bars.late_trades == 1  # never twice
    assert bars.close(180)[0].volume == 0  # no trade: a flat bar at the last price
