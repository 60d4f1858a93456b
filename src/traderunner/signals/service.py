"""The stream service: each new candle → store → cache → bus, then the live strategies → signals.

For every bar the feed gives (:meth:`StreamService.handle`):

1. **Skip what is done.** A bar at or before the series' cursor (``stream_cursors``: the
   newest bar this service finished) was handled by an earlier run: a restarted replay
   resumes after it, repeating nothing.
2. **Store, then cache** (``MarketCache.append``: the upsert, the cached series extended, the
   latest candle set).
3. **Strategies.** Every live strategy of that symbol and timeframe that is not paused runs
   the same ``signals()`` a backtest runs, on the last ``history_bars(timeframe)`` bars (a
   rolling window seeded from the store's bars before the first one handled;
   ``strategies.live.target_at_last_bar``), and its target at this bar is compared with the
   last target it published (durable, ``live_targets``). A change is a signal, whose id is
   :func:`~traderunner.bus.stable_id` of (live strategy, symbol, timeframe, bar): the same
   bar gives the same id in any run. The run-start rule of a backtest holds for each sleeve's
   session (it starts on the first bar past the warm-up the sleeve sees): a strategy that
   ``waits_for_change`` (crossings) stays flat until its signal differs from the one on that
   bar, and that wait is durable too (``live_targets.hold``).
4. **Publish** the signals on ``signals`` and the candle on ``candles.{tf}`` (listing the
   signal ids, so the trader steps the bar only after it has recorded them), in one round
   trip, after the store and the cache have the bar.
5. **Record** the bar as done and the changed targets, in one store transaction.

A crash between 4 and 5 repeats that one bar on restart, with the same message ids, which
the trader recognises (its orders are keyed by signal id, its fills by bar). A crash before
4 publishes nothing for the bar, and the restart publishes it. So a restart neither repeats
nor skips a signal *in effect*.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from traderunner.bus import Envelope, Publisher, ensure_group, stable_id, topics
from traderunner.cache import MarketCache
from traderunner.domain.candles import Candle, CandleArrays
from traderunner.domain.feeds import Feed
from traderunner.domain.live import (
    CANDLE_V,
    SIGNAL_V,
    CandleMessage,
    LiveStrategy,
    SignalMessage,
)
from traderunner.domain.timeframe import Timeframe
from traderunner.redisdb.keys import TRADER_GROUP
from traderunner.signals.buffer import RollingBars
from traderunner.strategies import Strategy, get_strategy
from traderunner.strategies.live import target_at_last_bar

log = logging.getLogger(__name__)


def history_of(strategy: Strategy, timeframe: Timeframe) -> int:
    """How many recent bars reproduce ``strategy``'s full-history target at the last bar."""
    return max(int(strategy.history_bars(timeframe)), 1)


@dataclass(slots=True)
class SleeveState:
    """What the stream knows of one (live strategy, symbol): the target it last published,
    and while a crossing rule waits for its first change, the signal it waits to leave."""

    target: int = 0
    hold: int | None = None


def next_target(
    strategy: Strategy, window: CandleArrays, state: SleeveState | None
) -> tuple[int, SleeveState | None]:
    """The sleeve's target on the window's last bar and its state after it (None: its session
    has not started, the history is still in the warm-up)."""
    if len(window) <= max(int(strategy.warmup_bars), 0):
        return 0, state
    signal = target_at_last_bar(strategy, None, window)
    if state is None:  # the session starts on this bar
        if strategy.waits_for_change:
            return 0, SleeveState(0, signal)
        return signal, SleeveState(signal, None)
    if state.hold is not None:
        if signal == state.hold:
            return 0, state
        return signal, SleeveState(signal, None)
    return signal, SleeveState(signal, None)


@dataclass(slots=True)
class _Runner:
    """One live strategy, ready to run: its strategy object and how many bars it needs."""

    live: LiveStrategy
    strategy: Strategy
    bars: int


@dataclass(slots=True)
class BarReport:
    """What :meth:`StreamService.handle` did with one bar."""

    bar: Candle
    skipped: bool = False
    signals: list[SignalMessage] = field(default_factory=list)


class StreamService:
    """Turns candles into stored, cached, published bars and signals (module docstring).

    ``refresh``: seconds between re-reads of the live strategies (``live add``/``pause``
    made while it runs take effect within that). ``replay``: the bars come from the store
    itself (a replay), so step 2 is skipped: writing them back would change nothing.
    """

    def __init__(
        self,
        cache: MarketCache,
        publisher: Publisher,
        *,
        refresh: float = 1.0,
        replay: bool = False,
    ) -> None:
        self.cache = cache
        self.replay = replay
        self.store = cache.store
        self.publisher = publisher
        self.refresh = refresh
        self._runners: dict[tuple[str, str], list[_Runner]] = {}
        self._built: dict[str, tuple[LiveStrategy, _Runner]] = {}
        self._loaded_at = -1e18
        self._buffers: dict[tuple[str, str], RollingBars] = {}
        self._cursors: dict[tuple[str, str], int | None] = {}
        self._states: dict[tuple[str, str], SleeveState] = {}
        self._grouped: set[str] = set()
        self.published_candles = 0
        self.published_signals = 0

    # -- the live strategies -----------------------------------------------------------------

    def _load(self) -> None:
        if time.monotonic() - self._loaded_at < self.refresh:
            return
        found = self.store.live.list()
        runners: dict[tuple[str, str], list[_Runner]] = {}
        built: dict[str, tuple[LiveStrategy, _Runner]] = {}
        for live in found:
            old = self._built.get(live.name)
            runner: _Runner | None
            if old is not None and _same(old[0], live):
                runner = old[1]
                runner.live = live  # paused may have changed
            else:
                runner = self._build(live)
            if runner is None:
                continue
            built[live.name] = (live, runner)
            for symbol in live.symbols:
                runners.setdefault((symbol, live.timeframe), []).append(runner)
        if self._loaded_at < 0 or any(n not in self._built for n in built):
            # First load, or a strategy added (perhaps under a removed one's name): the
            # targets it last published are the store's (none for a new one: flat).
            self._states = {k: SleeveState(t, h) for k, (t, h) in self.store.live.targets().items()}
        self._runners, self._built = runners, built
        self._loaded_at = time.monotonic()

    def _build(self, live: LiveStrategy) -> _Runner | None:
        try:
            cls = get_strategy(live.strategy)
            strategy = cls(cls.make_params(dict(live.params)))
        except Exception as exc:  # a plugin removed since `live add`: say so, run the others
            log.error("stream: live strategy %s cannot run: %s", live.name, exc)
            return None
        return _Runner(live, strategy, history_of(strategy, Timeframe.parse(live.timeframe)))

    def live_for(self, symbol: str, timeframe: str) -> list[LiveStrategy]:
        """The live strategies that run on this series (paused ones included)."""
        self._load()
        return [r.live for r in self._runners.get((symbol, timeframe), [])]

    # -- one bar -----------------------------------------------------------------------------

    def handle(self, bar: Candle) -> BarReport:
        """Store, cache, run the strategies on and publish one new bar (module docstring)."""
        if not bar.symbol or bar.timeframe is None:
            raise ValueError("the stream needs candles with a symbol and a timeframe")
        tf = Timeframe.parse(bar.timeframe)
        key = (bar.symbol, tf.value)
        self._load()
        if key not in self._cursors:
            self._cursors[key] = self.store.live.cursor(*key)
        cursor = self._cursors[key]
        if cursor is not None and bar.ts_ns <= cursor:
            return BarReport(bar, skipped=True)
        self._ensure_groups(tf.value)
        runners = self._runners.get(key, [])
        buffer = self._buffer(bar, tf, runners)
        if not self.replay:
            self.cache.append(_one_bar(bar, tf))
        buffer.append(bar)
        signals: list[SignalMessage] = []
        envelopes: list[Envelope] = []
        changed: dict[str, SleeveState] = {}
        for runner in runners:
            live = runner.live
            if live.paused:
                continue
            state = self._states.get((live.name, bar.symbol))
            target, after = next_target(runner.strategy, buffer.window(runner.bars), state)
            if after is not None and after != state:
                changed[live.name] = after
            previous = 0 if state is None else state.target
            if target == previous:
                continue
            message = SignalMessage(
                live=live.name,
                strategy=live.strategy,
                account=live.account,
                symbol=bar.symbol,
                timeframe=tf.value,
                bar_ns=bar.ts_ns,
                target=target,
                previous=previous,
                close=bar.close,
            )
            signals.append(message)
            envelopes.append(
                Envelope.new(
                    topics.SIGNALS,
                    topics.SIGNAL,
                    message.to_payload(),
                    v=SIGNAL_V,
                    id=stable_id("signal", live.name, bar.symbol, tf.value, bar.ts_ns),
                )
            )
        candle = CandleMessage(
            symbol=bar.symbol,
            timeframe=tf.value,
            ts_ns=bar.ts_ns,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            source=bar.source,
            signals=tuple(e.id for e in envelopes),
        )
        envelopes.append(
            Envelope.new(
                topics.candles(tf),
                topics.CANDLE,
                candle.to_payload(),
                v=CANDLE_V,
                id=stable_id("candle", bar.symbol, tf.value, bar.ts_ns),
            )
        )
        self.publisher.publish_many(envelopes)
        self.store.live.finish_bar(
            bar.symbol, tf.value, bar.ts_ns, {n: (s.target, s.hold) for n, s in changed.items()}
        )
        for name, after in changed.items():
            self._states[(name, bar.symbol)] = after
        self._cursors[key] = bar.ts_ns
        self.published_candles += 1
        self.published_signals += len(signals)
        return BarReport(bar, signals=signals)

    def run(
        self,
        feed: Iterable[Candle],
        *,
        should_stop: Callable[[], bool] | None = None,
        on_bar: Callable[[BarReport], None] | None = None,
    ) -> int:
        """Handle every bar of ``feed`` until it ends or ``should_stop()``; bars handled."""
        done = 0
        for bar in feed:
            if should_stop is not None and should_stop():
                break
            report = self.handle(bar)
            done += not report.skipped
            if on_bar is not None:
                on_bar(report)
        return done

    async def consume(
        self, feed: Feed, *, on_bar: Callable[[BarReport], None] | None = None
    ) -> int:
        """Handle every bar of ``feed`` (``domain.feeds.Feed``) until its iteration ends (the
        end of a replay, or ``feed.aclose()``); bars handled. Each bar is handled before the
        next is asked for, so a bar's signals are published before the next bar arrives."""
        done = 0
        async for bar in feed:
            report = self.handle(bar)
            done += not report.skipped
            if on_bar is not None:
                on_bar(report)
        return done

    # -- helpers -----------------------------------------------------------------------------

    def _ensure_groups(self, timeframe: str) -> None:
        """Create the trader's group on both topics before the first publish, so it sees the
        first message even when the trader has never run (a stream read from "$" would not)."""
        if timeframe in self._grouped:
            return
        client, keys = self.publisher.redis, self.publisher.keys
        for topic in (topics.SIGNALS, topics.candles(timeframe)):
            ensure_group(client, keys, topic, TRADER_GROUP, start="0")
        self._grouped.add(timeframe)

    def _buffer(self, bar: Candle, tf: Timeframe, runners: list[_Runner]) -> RollingBars:
        key = (bar.symbol, tf.value)
        need = max((r.bars for r in runners), default=1)
        buffer = self._buffers.get(key)
        if buffer is not None and buffer.capacity >= need:
            return buffer
        # Seed from the bars stored before this one: the history the strategies continue from.
        history = self._history(bar, tf)
        buffer = RollingBars(bar.symbol, tf, need, source=bar.source)
        buffer.seed(history)
        self._buffers[key] = buffer
        return buffer

    def _history(self, bar: Candle, tf: Timeframe) -> CandleArrays:
        info = self.store.candles.series(bar.symbol, tf)
        if info is None or info.first_ns >= bar.ts_ns:
            return _one_bar(bar, tf).slice(0, 0)
        return self.cache.series(bar.symbol, tf, None, bar.ts_ns - 1)


def _same(a: LiveStrategy, b: LiveStrategy) -> bool:
    return (a.strategy, dict(a.params), a.symbols, a.timeframe) == (
        b.strategy,
        dict(b.params),
        b.symbols,
        b.timeframe,
    )


def _one_bar(bar: Candle, tf: Timeframe) -> CandleArrays:
    import numpy as np

    return CandleArrays(
        np.array([bar.ts_ns], dtype=np.int64),
        np.array([bar.open]),
        np.array([bar.high]),
        np.array([bar.low]),
        np.array([bar.close]),
        np.array([bar.volume]),
        symbol=bar.symbol,
        timeframe=tf,
        source=bar.source or "stream",
    )


__all__ = ["BarReport", "SleeveState", "StreamService", "history_of", "next_target"]
