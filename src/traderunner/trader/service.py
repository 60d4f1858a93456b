"""The trader service: signals → risk checks → orders; candles → paper fills → positions.

Two members of the bus group ``trader``, each in its own thread:

* **signals** (topic ``signals``): for each signal, unless its order is recorded already (a
  redelivery), the risk checks (risk.py) and then the order, keyed by the signal's id, in one
  store transaction (``store.trading.record_order``; a refusal is recorded with its reason).
* **candles** (topics ``candles.{tf}``, every timeframe): for each new bar, first the signals
  the stream published for that bar (the candle lists their ids) must be recorded (the
  topics arrive in any order; it waits for them, up to ``signal_wait``); then for every
  sleeve (live strategy x symbol) on that series the broker steps the bar with the sleeve's
  open orders, and the fills, order statuses, position and account are committed together
  (``store.trading.apply_bar``, skipped for a bar the sleeve already stepped). After the
  commit: notifications (fills), the positions snapshot in the cache, the daily loss check.

The consumer acknowledges an entry only after its handler returned, that is after the
commit: a trader killed at any point redoes at most the entries it held, and both writes
recognise what was done (the signal id, the sleeve's last bar). Exactly once in effect.

Run one trader per deployment (restarted under its name): a sleeve's bars must be stepped in
order by one process, and two live members of the group would split a series' candles.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from traderunner.bus import BusOptions, Consumer, Delivery, topics
from traderunner.bus.publisher import REDIS_DOWN
from traderunner.cache.snapshots import put_snapshot
from traderunner.domain.live import (
    CANDLE_V,
    SIGNAL_V,
    CandleMessage,
    LiveStrategy,
    Order,
    OrderStatus,
    Position,
    Rejection,
    SignalMessage,
)
from traderunner.domain.timeframe import Timeframe
from traderunner.engine.options import BacktestOptions
from traderunner.engine.step import Stepper
from traderunner.redisdb.keys import TRADER_GROUP, Keys
from traderunner.store import Store
from traderunner.store.trading import BarOutcome
from traderunner.trader.broker import Broker, PaperBroker
from traderunner.trader.notify import Notifier
from traderunner.trader.risk import Exposure, RiskChecks

log = logging.getLogger(__name__)

_SEEN = 100_000  # signal ids remembered as recorded (the rest are looked up in the store)


def warm_up() -> None:
    """Compile (or load from numba's cache) the engine's step before taking any entry: a
    first compile inside a handler takes seconds, and a trader killed during it again and
    again would count deliveries against entries it never got to."""
    Stepper().on_bar(1, 1.0, 1.0, 1.0, 1.0, 0)


class _Seen:
    """A bounded set of recently recorded signal ids, shared by the two threads."""

    def __init__(self, size: int = _SEEN) -> None:
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self._size = size
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)

    def add(self, ident: str) -> None:
        with self._lock:
            if ident not in self._ids:
                self._ids.add(ident)
                self._order.append(ident)
                if len(self._order) > self._size:
                    self._ids.discard(self._order.popleft())
            self.changed.notify_all()

    def missing(self, ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {i for i in ids if i not in self._ids}


@dataclass(slots=True)
class TraderCounters:
    signals: int = 0  # signal entries handled (redeliveries included)
    orders: int = 0  # orders recorded by this process
    rejected: int = 0
    bars: int = 0  # sleeve bars stepped and recorded
    fills: int = 0
    late: int = 0  # candles stepped before all their signals were recorded


class TraderService:
    """The automatic paper trader (module docstring). Connections are passed in.

    ``cache``: the cache Redis for the positions snapshot (None: no snapshot).
    ``timeframes``: the candle topics read (default: every timeframe).
    """

    def __init__(
        self,
        store: Store,
        durable: redis.Redis,
        keys: Keys,
        risk: RiskChecks,
        *,
        name: str = "trader",
        cache: redis.Redis | None = None,
        broker: Broker | None = None,
        notifier: Notifier | None = None,
        options: BusOptions | None = None,
        signal_wait: float = 30.0,
        timeframes: Sequence[str] | None = None,
        refresh: float = 1.0,
        snapshot_every: float = 0.5,
    ) -> None:
        self.store = store
        self.redis = durable
        self.keys = keys
        self.risk = risk
        self.name = name
        self.cache = cache
        self.broker: Broker = broker or PaperBroker()
        self.notifier = notifier or Notifier()
        self.options = options or BusOptions()
        self.signal_wait = signal_wait
        self.refresh = refresh
        self.snapshot_every = snapshot_every
        self.counters = TraderCounters()
        self._seen = _Seen()
        self._dirty: set[tuple[str, str, str]] = set()  # sleeves with an order not yet stepped
        self._positions: dict[tuple[str, str, str], Position | None] = {}
        self._lives: dict[str, LiveStrategy] = {}
        self._series: dict[tuple[str, str], list[LiveStrategy]] = {}
        self._loaded_at = -1e18
        self._lives_lock = threading.Lock()
        self._snapshot_at: dict[str, float] = {}
        self._parsed: dict[str, tuple[dict[str, Any], BacktestOptions]] = {}
        tfs = list(timeframes) if timeframes else [t.value for t in Timeframe]
        accept_signal = {topics.SIGNAL: {SIGNAL_V}}
        accept_candle = {topics.CANDLE: {CANDLE_V}}
        self.signals = Consumer(
            durable,
            keys,
            group=TRADER_GROUP,
            name=name,
            topics=[topics.SIGNALS],
            handler=self.on_signal,
            accept=accept_signal,
            options=self.options,
            start="0",
        )
        # Candles one at a time: a candle may wait for its signals, and every entry read in a
        # batch counts a delivery each time a killed trader takes it back, so a batch read
        # ahead could reach max_deliveries (dead letters) without ever being started.
        self.candles = Consumer(
            durable,
            keys,
            group=TRADER_GROUP,
            name=name,
            topics=[topics.candles(t) for t in tfs],
            handler=self.on_candle,
            accept=accept_candle,
            options=dataclasses.replace(self.options, batch=1),
            start="0",
        )
        self._threads: list[threading.Thread] = []

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Run both consumers in background threads (until :meth:`stop`)."""
        warm_up()
        for consumer in (self.signals, self.candles):
            thread = threading.Thread(
                target=consumer.run, name=f"trader-{consumer.topics[0]}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both consumers (after their current entry), then write the snapshots."""
        self.signals.stop()
        self.candles.stop()
        with self._seen.changed:
            self._seen.changed.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        for account in {p.account for p in self._positions.values() if p is not None}:
            self.snapshot(account, force=True)
        self.notifier.flush(timeout=2.0)

    def close(self) -> None:
        self.signals.close()
        self.candles.close()
        self.notifier.close()

    def run(self, should_stop: Callable[[], bool], poll: float = 0.2) -> None:
        """:meth:`start`, wait until ``should_stop()``, :meth:`stop`."""
        self.start()
        try:
            while not should_stop():
                if not all(t.is_alive() for t in self._threads):
                    raise RuntimeError("a trader consumer thread died; see the log")
                time.sleep(poll)
        finally:
            self.stop()

    def idle(self) -> bool:
        """True when nothing is waiting: no lag and nothing pending on any topic read (False
        while the durable Redis cannot be asked)."""
        try:
            for consumer in (self.signals, self.candles):
                for group in consumer.stats():
                    if group.pending or (group.lag or 0):
                        return False
        except REDIS_DOWN:
            return False
        return True

    # -- the live strategies -----------------------------------------------------------------

    def _load(self) -> None:
        with self._lives_lock:
            if time.monotonic() - self._loaded_at < self.refresh:
                return
            lives = {s.name: s for s in self.store.live.list()}
            series: dict[tuple[str, str], list[LiveStrategy]] = {}
            for live in lives.values():
                for symbol in live.symbols:
                    series.setdefault((symbol, live.timeframe), []).append(live)
            self._lives, self._series = lives, series
            self._loaded_at = time.monotonic()

    def _live(self, name: str) -> LiveStrategy | None:
        self._load()
        found = self._lives.get(name)
        if found is None:  # added since the last load
            self._loaded_at = -1e18
            self._load()
            found = self._lives.get(name)
        return found

    # -- signals -----------------------------------------------------------------------------

    def on_signal(self, delivery: Delivery) -> None:
        """Record the order of one signal (after the risk checks), once per signal id."""
        envelope = delivery.envelope
        self.counters.signals += 1
        ident = envelope.id
        if delivery.deliveries > 1 and self.store.trading.order(ident) is not None:
            self._seen.add(ident)
            return
        signal = SignalMessage.from_payload(envelope.payload)
        live = self._live(signal.live)
        rejection: Rejection | None = None
        if live is None:
            refused: tuple[str, str] | None = (
                "unknown_live",
                f"no live strategy {signal.live!r} (removed?)",
            )
        else:
            direction = self._options(live).direction.value
            refused = self.risk.check(signal, direction, self._exposure(live, signal.symbol))
        if refused is not None:
            rejection = Rejection(
                ident, signal.account, signal.live, signal.symbol, refused[0], refused[1]
            )
        order = Order(
            signal_id=ident,
            account=signal.account,
            live=signal.live,
            strategy=signal.strategy,
            symbol=signal.symbol,
            timeframe=signal.timeframe,
            target=signal.target,
            previous=signal.previous,
            bar_ns=signal.bar_ns,
            status=OrderStatus.REJECTED if rejection else OrderStatus.OPEN,
            reason=rejection.reason if rejection else "",
            created_ns=time.time_ns(),
        )
        _, created = self.store.trading.record_order(order, rejection)
        if created:
            self.counters.orders += 1
            if rejection is not None:
                self.counters.rejected += 1
                self.notifier.send("rejection", **rejection.to_dict())
            else:
                self._dirty.add((signal.account, signal.live, signal.symbol))
        self._seen.add(ident)

    def _exposure(self, live: LiveStrategy, symbol: str) -> Exposure:
        key = (live.account, live.name, symbol)
        pos = self._position(key)
        opts = self._options(live)
        equity = pos.equity if pos is not None else opts.cash / max(len(live.symbols), 1)
        others = sum(
            abs(p.value)
            for k, p in list(self._positions.items())
            if p is not None and k[0] == live.account and k != key
        )
        return Exposure(equity, opts.size, others)

    def _options(self, live: LiveStrategy) -> BacktestOptions:
        """The live strategy's engine options, parsed once per version of them."""
        given = dict(live.options)
        found = self._parsed.get(live.name)
        if found is None or found[0] != given:
            found = self._parsed[live.name] = (given, BacktestOptions.from_kwargs(**given))
        return found[1]

    # -- candles -----------------------------------------------------------------------------

    def on_candle(self, delivery: Delivery) -> None:
        """Step every sleeve of this series by one bar (module docstring)."""
        bar = CandleMessage.from_payload(delivery.envelope.payload)
        self._await_signals(bar)
        self._load()
        stepped: list[tuple[tuple[str, str, str], BarOutcome]] = []
        for live in self._series.get((bar.symbol, bar.timeframe), []):
            key = (live.account, live.name, bar.symbol)
            pos = self._position(key)
            if pos is not None and pos.bar_ns >= bar.ts_ns:
                continue  # stepped already (a redelivered candle)
            orders: list[Order] = []
            if bar.signals or key in self._dirty or pos is None or pos.state.get("open_orders"):
                self._dirty.discard(key)
                orders = [o for o in self.store.trading.open_orders(*key) if o.bar_ns <= bar.ts_ns]
            stepped.append((key, self.broker.on_bar(live, bar, pos, orders)))
        # One transaction for the whole bar: every sleeve of the series, or none of them.
        written = self.store.trading.apply_bars([o for _, o in stepped])
        touched: set[str] = set()
        for (key, outcome), ok in zip(stepped, written, strict=True):
            if not ok:
                self._positions[key] = self.store.trading.position(*key)  # another process
                continue
            self._positions[key] = outcome.position
            self.counters.bars += 1
            self.counters.fills += len(outcome.fills)
            touched.add(key[0])
            for fill in outcome.fills:
                self.notifier.send("fill", **fill.to_dict())
        for account in touched:
            self._after_bar(account)

    def _await_signals(self, bar: CandleMessage) -> None:
        if not bar.signals:
            return
        missing = self._seen.missing(bar.signals)
        if missing:
            missing -= self.store.trading.recorded(missing)
        deadline = time.monotonic() + self.signal_wait
        while missing and not self.candles.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                self.counters.late += 1
                log.warning(
                    "trader: stepping %s %s bar %d without %d of its signals (not recorded "
                    "after %.0f s); they apply from the next bar",
                    bar.symbol,
                    bar.timeframe,
                    bar.ts_ns,
                    len(missing),
                    self.signal_wait,
                )
                return
            with self._seen.changed:
                self._seen.changed.wait(min(left, 0.5))
            missing = self._seen.missing(missing)

    def _position(self, key: tuple[str, str, str]) -> Position | None:
        if key not in self._positions:
            self._positions[key] = self.store.trading.position(*key)
        return self._positions[key]

    def _after_bar(self, account: str) -> None:
        if self.risk.limits.daily_loss_limit:
            found = self.store.trading.account(account)
            reason = None if found is None else self.risk.loss_tripped(found)
            if reason is not None and self.risk.kill.halt("daily_loss_limit", reason):
                log.warning("trader: kill switch tripped: %s", reason)
                self.notifier.send(
                    "kill_switch", state="halted", by="daily_loss_limit", reason=reason
                )
        self.snapshot(account)

    def snapshot(self, account: str, *, force: bool = False) -> None:
        """Write the account's positions snapshot to the cache (at most every
        ``snapshot_every`` seconds unless ``force``)."""
        if self.cache is None:
            return
        now = time.monotonic()
        if not force and now - self._snapshot_at.get(account, -1e18) < self.snapshot_every:
            return
        self._snapshot_at[account] = now
        found = self.store.trading.account(account)
        positions = self.store.trading.positions(account=account)
        put_snapshot(
            self.cache,
            self.keys,
            account,
            {
                "account": None if found is None else found.to_dict(),
                "positions": [p.to_dict() for p in positions],
                "at_ns": time.time_ns(),
            },
        )
