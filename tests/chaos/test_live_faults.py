"""The live path under real kills: ``traderunner trader`` and ``traderunner stream`` as real
processes on real Valkey and a real SQLite store.

1. 5,000 signals flow while the trader is SIGKILLed 10 times and restarted under its name:
   every signal has exactly one order, every sleeve stepped every bar once (its fills equal a
   Stepper run of the same bars and targets), and nothing is pending at the end.
2. The stream service SIGKILLed mid-replay and restarted: every candle and every signal of an
   uninterrupted run is on the bus, and nothing else (a repeat of the one bar it was killed in
   carries the same ids, which the trader recognises).
3. The durable Valkey SIGKILLed mid-flow and restarted from its AOF: the stream and the trader
   reconnect by themselves, carry on, and the trades equal the backtest's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.clihelpers import clean_env
from tests.redishelpers import RedisPair, start_pair
from traderunner.bus import BusOptions, Envelope, Publisher, ensure_group, stable_id, topic_stats
from traderunner.bus import topics as bus_topics
from traderunner.bus.live import recent
from traderunner.domain.live import CandleMessage, LiveStrategy, SignalMessage
from traderunner.domain.timeframe import Timeframe
from traderunner.engine import run_backtest
from traderunner.engine.step import Stepper
from traderunner.marketdata import load_demo
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import TRADER_GROUP, Keys
from traderunner.store import Store
from traderunner.strategies import get_strategy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TF = Timeframe.M5
STEP = 300 * 10**9
T0 = 1_750_000_000 * 10**9 // STEP * STEP


class Proc:
    """One ``python -m traderunner ...`` process, its output in files."""

    def __init__(self, args: list[str], env: dict[str, str], folder: Path, label: str) -> None:
        self.args, self.env, self.folder, self.label = args, env, folder, label
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def err_path(self) -> Path:
        return self.folder / f"{self.label}.err"

    def log(self, tail: int = 4000) -> str:
        text = self.err_path.read_text(errors="replace") if self.err_path.exists() else ""
        return text[-tail:]

    def start(self, ready: str | None = None, timeout: float = 60.0) -> Proc:
        self.starts += 1
        mark = len(self.log(tail=10**9))
        with open(self.folder / f"{self.label}.out", "ab") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "traderunner", *self.args],
                cwd=ROOT,
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while ready is not None and ready not in self.log(tail=10**9)[mark:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.label} did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


def env_for(pair: RedisPair, root: Path, prefix: str) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    return clean_env(
        TRADERUNNER_DATA_DIR=str(root / "data"),
        TRADERUNNER_STORE_URL=f"sqlite:///{root / 'store.db'}",
        TRADERUNNER_REDIS_URL=pair.durable.url,
        TRADERUNNER_CACHE_URL=pair.cache.url,
        TRADERUNNER_REDIS_PREFIX=prefix,
        TRADERUNNER_BUS_CLAIM_IDLE="5",
    )


def no_pending(pair: RedisPair, keys: Keys, topics: list[str]) -> None:
    client = connect(pair.durable.url)
    try:
        for topic in topics:
            group = topic_stats(client, keys, topic).group(TRADER_GROUP)
            assert group is not None and group.pending == 0 and group.lag == 0, group
    finally:
        client.close()


# -- 1. the trader killed 10 times while 5,000 signals flow --------------------------------

STRATEGIES = 50
BARS = 100  # 50 x 100 = 5,000 signals: every strategy changes its target on every bar


def _target(k: int, i: int) -> int:
    return 1 if (i + k) % 2 == 0 else 0


@pytest.mark.timeout(400)
def test_trader_sigkilled_ten_times_handles_5000_signals_once(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    prefix = "chaos-tr:"
    keys = Keys(prefix)
    env = env_for(redis_pair, tmp_path, prefix)
    store = Store.connect(env["TRADERUNNER_STORE_URL"])
    for k in range(STRATEGIES):
        store.live.add(LiveStrategy(f"c{k:02d}", "sma_cross", ("AAA",), "M5", account="chaos"))
    rng = np.random.default_rng(7)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, BARS)))
    opens = np.concatenate([[100.0], closes[:-1]])
    client = connect(redis_pair.durable.url)
    for topic in (bus_topics.SIGNALS, bus_topics.candles(TF)):
        ensure_group(client, keys, topic, TRADER_GROUP, start="0")
    publisher = Publisher(client, keys, BusOptions())
    trader = Proc(["trader", "--name", "chaos-trader"], env, tmp_path, "trader")
    failed: list[BaseException] = []

    def publish() -> None:
        try:
            for i in range(BARS):
                ts = T0 + i * STEP
                signals = [
                    Envelope.new(
                        bus_topics.SIGNALS,
                        bus_topics.SIGNAL,
                        SignalMessage(
                            f"c{k:02d}",
                            "sma_cross",
                            "chaos",
                            "AAA",
                            "M5",
                            ts,
                            _target(k, i),
                            _target(k, i - 1) if i else 0,
                            float(closes[i]),
                        ).to_payload(),
                        id=f"s-{k:02d}-{i:03d}",
                    )
                    for k in range(STRATEGIES)
                    if _target(k, i) != (_target(k, i - 1) if i else 0)
                ]
                o, c = float(opens[i]), float(closes[i])
                candle = CandleMessage(
                    "AAA", "M5", ts, o, max(o, c) * 1.001, min(o, c) * 0.999, c, 1.0,
                    signals=tuple(e.id for e in signals),
                )  # fmt: skip
                publisher.publish_many(
                    [*signals, Envelope.new(bus_topics.candles(TF), "candle", candle.to_payload())]
                )
                time.sleep(0.05)
        except BaseException as exc:  # pragma: no cover - reported below
            failed.append(exc)

    expected_signals = sum(
        1
        for k in range(STRATEGIES)
        for i in range(BARS)
        if _target(k, i) != (_target(k, i - 1) if i else 0)
    )
    assert expected_signals >= 4900
    feeder = threading.Thread(target=publish, daemon=True)
    try:
        trader.start(ready="consuming signals and candles")
        feeder.start()
        for kill in range(10):
            mark = (kill + 1) * expected_signals // 12
            deadline = time.monotonic() + 120
            while store.trading.count_orders() < mark:
                assert trader.proc is not None and trader.proc.poll() is None, trader.log()
                assert time.monotonic() < deadline, trader.log()
                time.sleep(0.02)
            trader.kill()  # anywhere: mid-transaction, between commit and XACK, mid-batch
            trader.start(ready="consuming signals and candles")
        feeder.join(timeout=120)
        assert not failed, failed
        deadline = time.monotonic() + 180
        while True:
            done = store.trading.positions(account="chaos")
            if (
                store.trading.count_orders() == expected_signals
                and len(done) == STRATEGIES
                and all(p.bar_ns == T0 + (BARS - 1) * STEP for p in done)
            ):
                break
            assert trader.proc is not None and trader.proc.poll() is None, trader.log()
            assert time.monotonic() < deadline, (store.trading.count_orders(), trader.log())
            time.sleep(0.1)
        time.sleep(0.5)  # the last acknowledgements ride with the next read
        assert trader.terminate() == 0, trader.log()
        assert trader.starts == 11
        orders = store.trading.orders()
        assert len(orders) == expected_signals
        assert len({o.signal_id for o in orders}) == expected_signals
        fills = store.trading.fills(account="chaos")
        for k in range(STRATEGIES):
            stepper = Stepper({}, cash=100_000.0)
            want = []
            for i in range(BARS):
                o, c = float(opens[i]), float(closes[i])
                out = stepper.on_bar(
                    T0 + i * STEP, o, max(o, c) * 1.001, min(o, c) * 0.999, c, _target(k, i)
                )
                want += [(f.time_ns, f.side, f.units, f.price) for f in out.fills]
            got = [(f.bar_ns, f.side, f.units, f.price) for f in fills if f.live == f"c{k:02d}"]
            assert got == want, k
        no_pending(redis_pair, keys, [bus_topics.SIGNALS, bus_topics.candles(TF)])
    finally:
        trader.stop()
        client.close()
        store.close()


# -- 2. the stream killed mid-replay -------------------------------------------------------


def _expected_ids(store: Store, lives: list[LiveStrategy]) -> tuple[set[str], set[str]]:
    candles: set[str] = set()
    signals: set[str] = set()
    for symbol in ("AAPL", "MSFT"):
        c = store.candles.load(symbol, TF)
        candles |= {stable_id("candle", symbol, "M5", int(t)) for t in c.ts}
        for live in lives:
            cls = get_strategy(live.strategy)
            target = cls(cls.make_params(dict(live.params))).target_positions(c)
            before = np.concatenate([[0], target[:-1]])
            for t in np.flatnonzero(target != before):
                signals.add(stable_id("signal", live.name, symbol, "M5", int(c.ts[t])))
    return candles, signals


def _bus_ids(pair: RedisPair, keys: Keys, topic: str) -> list[str]:
    client = connect(pair.durable.url)
    try:
        return [e.id for e in recent(client, keys, topic, 100_000)]
    finally:
        client.close()


LIVES = [
    LiveStrategy("fast", "sma_cross", ("AAPL", "MSFT"), "M5", params={"fast": 5, "slow": 20},
                 options={"direction": "both"}),
    LiveStrategy("rsi", "rsi_reversion", ("AAPL", "MSFT"), "M5"),
]  # fmt: skip


@pytest.mark.timeout(300)
def test_stream_sigkilled_mid_replay_repeats_and_skips_nothing(
    redis_pair: RedisPair, tmp_path: Path
) -> None:
    prefix = "chaos-st:"
    keys = Keys(prefix)
    env = env_for(redis_pair, tmp_path, prefix)
    store = Store.connect(env["TRADERUNNER_STORE_URL"])
    load_demo(store, ("AAPL", "MSFT"), TF, days=3)
    for live in LIVES:
        store.live.add(live)
    want_candles, want_signals = _expected_ids(store, LIVES)
    stream = Proc(["stream", "--replay"], env, tmp_path, "stream")
    try:
        for kill_at in (120, 300):
            stream.start()
            deadline = time.monotonic() + 120
            while len(_bus_ids(redis_pair, keys, bus_topics.candles(TF))) < kill_at:
                assert stream.proc is not None and stream.proc.poll() is None, stream.log()
                assert time.monotonic() < deadline, stream.log()
                time.sleep(0.02)
            stream.kill()
        stream.start()
        assert stream.wait(timeout=180) == 0, stream.log()
        candles = _bus_ids(redis_pair, keys, bus_topics.candles(TF))
        signals = _bus_ids(redis_pair, keys, bus_topics.SIGNALS)
        assert set(candles) == want_candles
        assert set(signals) == want_signals and len(want_signals) >= 10
        # At most the bar each kill interrupted went out twice (same ids: harmless).
        assert len(candles) - len(set(candles)) <= 2
        repeated = [i for i, n in Counter(signals).items() if n > 1]
        assert len(repeated) <= 2 * len(LIVES)
    finally:
        stream.stop()
        store.close()


# -- 3. the durable Redis killed mid-flow -------------------------------------------------


@pytest.mark.timeout(300)
def test_durable_redis_sigkilled_mid_flow_services_carry_on(tmp_path: Path) -> None:
    pair = start_pair(tmp_path / "valkey")  # its own servers: this test kills one
    prefix = "chaos-rd:"
    keys = Keys(prefix)
    env = env_for(pair, tmp_path, prefix)
    store = Store.connect(env["TRADERUNNER_STORE_URL"])
    load_demo(store, ("AAPL", "MSFT"), TF, days=3)
    live = LiveStrategy(
        "p", "sma_cross", ("AAPL", "MSFT"), "M5", params={"fast": 5, "slow": 20},
        options={"direction": "both", "fees_bps": 1.0},
    )  # fmt: skip
    store.live.add(live)
    trader = Proc(["trader", "--name", "rd-trader"], env, tmp_path, "trader")
    stream = Proc(["stream", "--replay"], env, tmp_path, "stream")
    try:
        trader.start(ready="consuming signals and candles")
        stream.start()
        deadline = time.monotonic() + 120
        while len(_bus_ids(pair, keys, bus_topics.candles(TF))) < 150:
            assert stream.proc is not None and stream.proc.poll() is None, stream.log()
            assert time.monotonic() < deadline, stream.log()
            time.sleep(0.02)
        pid = pair.durable.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(1.5)  # longer than redis-py's own retries: both services see it
        pair.durable.start()  # same port and folder: the AOF is replayed
        assert stream.wait(timeout=180) == 0, stream.log()
        candles = {c.symbol: c for c in (store.candles.load(s, TF) for s in live.symbols)}
        result = run_backtest(live.strategy, candles, dict(live.params), **dict(live.options))
        want = sorted(
            (sym, int(t), str(s), float(u), float(p))
            for sym in live.symbols
            for t, s, u, p in zip(
                result.symbols[sym].fills["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
                result.symbols[sym].fills["side"],
                result.symbols[sym].fills["size"],
                result.symbols[sym].fills["price"],
                strict=True,
            )
        )
        last = max(int(c.ts[-1]) for c in candles.values())
        deadline = time.monotonic() + 120
        while True:
            done = store.trading.positions()
            if len(done) == 2 and all(p.bar_ns == int(candles[p.symbol].ts[-1]) for p in done):
                break
            assert trader.proc is not None and trader.proc.poll() is None, trader.log()
            assert time.monotonic() < deadline, trader.log()
            time.sleep(0.1)
        got = sorted((f.symbol, f.bar_ns, f.side, f.units, f.price) for f in store.trading.fills())
        assert got == want and len(want) >= 4
        account = store.trading.account("paper")
        assert account is not None
        assert account.equity == pytest.approx(float(result.equity.iloc[-1]), rel=1e-12)
        assert last > 0
        time.sleep(0.5)
        assert trader.terminate() == 0, trader.log()
        assert "reconnected after" in trader.log(tail=10**6), trader.log()
        assert "publishing resumed" in stream.log(tail=10**6), stream.log()
        no_pending(pair, keys, [bus_topics.SIGNALS, bus_topics.candles(TF)])
    finally:
        stream.stop()
        trader.stop()
        store.close()
        pair.durable.stop()
        pair.cache.stop()
