"""WebSocketFeed: EODHD's real-time US trades aggregated into bars that close on time.

EODHD's real-time WebSocket (``wss://ws.eodhistoricaldata.com/ws/us?api_token=...``; its
real-time page) takes ``{"action": "subscribe", "symbols": "AAPL,TSLA"}`` and pushes one JSON
message per trade: ``s`` ticker, ``p`` price, ``v`` size, ``c`` condition codes, ``dp`` dark
pool, ``ms`` market status, ``t`` epoch milliseconds. Status messages
(``{"status_code": 200, "message": "Authorized"}``; 401/403 for a refused token or plan) are not
trades.

Bars (M1, M5, H1) are built from trade times (``t``), not arrival times, and **close on time**:
the bar ``[b, b + step)`` is yielded when the clock passes ``b + step + grace_s`` whether or not
a trade came, so a strategy's clock never waits for the next trade. A bar with no trade is
yielded flat at the symbol's last price with volume 0 (none before the symbol's first trade).
The bar in progress when the feed starts is partial and is skipped; a trade that arrives after
its bar was yielded is dropped and counted (``late_trades``): a bar is never yielded twice.

A dropped connection is reopened with exponential back-off (``backoff`` doubling to
``max_backoff``, with jitter) and the symbols are subscribed again (EODHD keeps no
subscription across connections); bars keep closing on time meanwhile, with the trades that
arrived. A refused token (HTTP 401/403 on the handshake, or a 401/403 status message) raises
ProviderAuthError from the iteration. The token is never logged: messages name the host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from traderunner.domain.candles import Candle
from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataRangeError, ProviderAuthError
from traderunner.marketdata.feeds.once import OnceFeed

NS = 1_000_000_000
DEFAULT_URL = "wss://ws.eodhistoricaldata.com/ws/us"
SOURCE = "eodhd-ws"
Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger(__name__)
_SERVED = (Timeframe.M1, Timeframe.M5, Timeframe.H1)


def ws_code(symbol: str) -> str:
    """The WebSocket's ticker for a symbol: ``AAPL.US`` -> ``AAPL`` (US trades stream)."""
    text = symbol.strip()
    return text[: -len(".US")] if text.upper().endswith(".US") else text


class TradeBars:
    """Trades folded into bars of ``step_s`` seconds, each bar closed (returned) once.

    ``start(b)``: bars before open time ``b`` are partial and ignored. ``add`` takes one trade
    (False when it was late or before the start); ``close(b)`` returns the bars opening at
    ``b``, in symbol order, and makes every trade of ``b`` or earlier late from then on.
    """

    def __init__(self, symbols: Sequence[str], timeframe: Timeframe, source: str = SOURCE) -> None:
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.step = timeframe.seconds
        self.source = source
        self._bars: dict[tuple[str, int], list[float]] = {}
        self._last: dict[str, float] = {}
        self._first = 0
        self._closed_until: int | None = None
        self.late_trades = 0

    def start(self, first_bar: int) -> None:
        self._first = first_bar

    def add(self, symbol: str, price: float, size: float, t_ms: int) -> bool:
        bar = t_ms // 1000 // self.step * self.step
        if bar < self._first:
            return False
        if self._closed_until is not None and bar <= self._closed_until:
            self.late_trades += 1
            return False
        state = self._bars.get((symbol, bar))
        if state is None:
            self._bars[(symbol, bar)] = [price, price, price, price, size]
        else:
            state[1] = max(state[1], price)
            state[2] = min(state[2], price)
            state[3] = price
            state[4] += size
        return True

    def close(self, bar: int) -> list[Candle]:
        out: list[Candle] = []
        for symbol in self.symbols:
            state = self._bars.pop((symbol, bar), None)
            if state is None:
                last = self._last.get(symbol)
                if last is None:
                    continue
                state = [last, last, last, last, 0.0]
            o, h, low, c, v = state
            self._last[symbol] = c
            out.append(Candle(bar * NS, o, h, low, c, v, symbol, self.timeframe, self.source))
        self._closed_until = bar
        for key in [k for k in self._bars if k[1] <= bar]:  # trades of bars already closed
            del self._bars[key]
        return out


class WebSocketFeed(OnceFeed):
    """A live Feed on EODHD's real-time trades (see the module docstring)."""

    def __init__(
        self,
        token: SecretStr | str,
        symbols: Sequence[str],
        timeframe: Timeframe | str,
        *,
        url: str = DEFAULT_URL,
        grace_s: float = 2.0,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__()
        tf = Timeframe.parse(timeframe)
        if tf not in _SERVED:
            raise DataRangeError(
                f"the WebSocket feed builds M1, M5 or H1 bars from trades, not {tf.value}"
            )
        names = tuple(dict.fromkeys(s.strip() for s in symbols if s.strip()))
        if not names:
            raise DataRangeError("a feed needs at least one symbol, e.g. AAPL.US")
        secret = token if isinstance(token, SecretStr) else SecretStr(str(token))
        if not secret.get_secret_value().strip():
            raise ProviderAuthError("no EODHD API token: set TRADERUNNER_EODHD_TOKEN")
        self._token = secret
        self._symbols = names
        self._by_code = {ws_code(s): s for s in names}
        self._tf = tf
        self._url = url.rstrip("?")
        self._host = urlsplit(self._url).netloc or self._url
        self._grace = float(grace_s)
        self._backoff = float(backoff)
        self._max_backoff = float(max_backoff)
        self._clock = clock
        self._sleep = sleep
        self._fatal: Exception | None = None
        self.bars = TradeBars(names, tf)
        self.connections = 0  # successful connections (1 + reconnects)
        self.trades = 0  # trades taken into bars

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def timeframe(self) -> Timeframe:
        return self._tf

    async def _bars(self) -> AsyncIterator[Candle]:
        step = self._tf.seconds
        bar = int(self._clock()) // step * step + step  # the first whole bar
        self.bars.start(bar)
        reader = asyncio.create_task(self._read_forever(), name="eodhd-ws-reader")
        try:
            while not self._closed.is_set():
                if not await self._until(bar + step + self._grace, reader):
                    break
                for candle in self.bars.close(bar):
                    yield candle
                bar += step
            if self._fatal is not None:
                raise self._fatal
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read_forever(self) -> None:
        failures = 0
        subscribe = json.dumps({"action": "subscribe", "symbols": ",".join(self._by_code)})
        url = f"{self._url}?api_token={self._token.get_secret_value()}"
        while not self._closed.is_set():
            try:
                async with connect(url, open_timeout=10, ping_interval=20, logger=log) as ws:
                    await ws.send(subscribe)
                    self.connections += 1
                    failures = 0
                    async for raw in ws:
                        self._on_message(raw)
                        if self._fatal is not None:
                            return
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    self._fatal = ProviderAuthError(
                        f"EODHD's WebSocket at {self._host} refused the API token or plan "
                        f"(HTTP {status}): set TRADERUNNER_EODHD_TOKEN (a plan with real-time "
                        "data)"
                    )
                    return
                log.warning("EODHD WebSocket %s answered HTTP %d; reconnecting", self._host, status)
            except (WebSocketException, OSError, TimeoutError) as exc:
                problem = type(exc).__name__
                log.warning("EODHD WebSocket %s dropped (%s); reconnecting", self._host, problem)
            failures += 1
            delay = min(self._max_backoff, self._backoff * 2 ** (failures - 1))
            await self._sleep(delay * (1 + 0.1 * random.random()))

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        items = message if isinstance(message, list) else [message]
        for item in items:
            if not isinstance(item, dict):
                continue
            code = item.get("status_code", item.get("status"))
            if code is not None and "s" not in item:
                if code in (401, 403):
                    self._fatal = ProviderAuthError(
                        f"EODHD's WebSocket at {self._host} refused the subscription "
                        f"({code}: {str(item.get('message', ''))[:80]}): check "
                        "TRADERUNNER_EODHD_TOKEN and the plan"
                    )
                continue
            symbol = self._by_code.get(str(item.get("s", "")))
            try:
                price, size, t_ms = float(item["p"]), float(item.get("v") or 0), int(item["t"])
            except (KeyError, TypeError, ValueError):
                continue
            if symbol is not None and self.bars.add(symbol, price, size, t_ms):
                self.trades += 1

    async def _until(self, when: float, reader: asyncio.Task[None]) -> bool:
        """Sleep until the clock reads ``when``; False when closed or the reader gave up."""
        while not self._closed.is_set() and self._fatal is None:
            left = when - self._clock()
            if left <= 0:
                return True
            closing = asyncio.ensure_future(self._closed.wait())
            sleeping = asyncio.ensure_future(self._sleep(left))
            try:
                await asyncio.wait({closing, sleeping, reader}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
                sleeping.cancel()
            if reader.done() and not self._closed.is_set():
                # The reader returns only when closed or fatal; anything else is a bug there.
                failed = None if reader.cancelled() else reader.exception()
                if self._fatal is None:
                    self._fatal = RuntimeError(f"the WebSocket reader stopped: {failed!r}")
        return False
