"""The bus under real kills: a publisher and a consumer in their own processes (bus_peer.py).

* The durable Valkey SIGKILLed mid-flow and restarted from its AOF: both processes carry on by
  themselves, every publish Redis acknowledged is handled, none twice in effect.
* The consumer SIGKILLed mid-flow and restarted under the same name: the same.

The consumer's handler is idempotent by envelope id (the contract in ``traderunner.bus``):
the ``effects`` table has the id as its primary key; ``calls`` logs every call.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.clihelpers import clean_env
from tests.redishelpers import RedisPair, start_pair
from traderunner.bus import topic_stats
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class Peer:
    """One ``python -m tests.chaos.bus_peer`` process, its output in files."""

    def __init__(self, role: str, spec: dict[str, Any], folder: Path) -> None:
        self.role, self.spec, self.folder = role, spec, folder
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Peer:
        self.starts += 1
        out = self.folder / f"{self.role}-{self.starts}.out"
        with open(out, "wb") as stdout, open(self.err_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.bus_peer", self.role, json.dumps(self.spec)],
                cwd=ROOT,
                env={**clean_env(), "PYTHONUNBUFFERED": "1"},
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while "ready" not in out.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.role} did not start:\n{self.log()}")
            time.sleep(0.02)
        return self

    @property
    def err_path(self) -> Path:
        return self.folder / f"{self.role}.err"

    def log(self, tail: int = 3000) -> str:
        text = self.err_path.read_text(errors="replace") if self.err_path.exists() else ""
        return text[-tail:]

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


def confirmed(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def effects(db: Path) -> tuple[list[str], int]:
    """The ids whose effect is recorded (each once by construction) and the handler calls."""
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM effects")]
        calls = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    return ids, int(calls)


def wait_handled(db: Path, wanted: set[str], consumer: Peer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = set(effects(db)[0]) if db.exists() else set()
        if wanted <= done:
            return
        assert consumer.proc is not None and consumer.proc.poll() is None, consumer.log()
        assert time.monotonic() < deadline, (len(wanted - done), consumer.log())
        time.sleep(0.1)


def wait_confirmed(sent: Path, count: int, publisher: Peer) -> None:
    while len(confirmed(sent)) < count:
        assert publisher.proc is not None and publisher.proc.poll() is None, publisher.log()
        time.sleep(0.02)


def check_end_state(pair: RedisPair, keys: Keys, sent: Path, db: Path) -> int:
    """Every confirmed publish handled, no effect twice, nothing pending; the calls made."""
    ids = confirmed(sent)
    done, calls = effects(db)
    assert len(done) == len(set(done))
    assert set(ids) <= set(done)  # nothing acknowledged is lost
    # Nothing invented: at most the one publish in flight when the publisher stopped.
    assert set(done) <= {f"msg-{i:06d}" for i in range(len(ids) + 1)}
    client = connect(pair.durable.url)
    try:
        group = topic_stats(client, keys, "signals").group("trader")
    finally:
        client.close()
    assert group is not None and group.pending == 0 and group.lag == 0, group
    return calls


#: The publisher runs until the test stops it (SIGTERM): every kill lands mid-flow however
#: slow the machine is. At 600 signals per second.
OPEN_ENDED = {"n": 10**7, "rate": 600}


@pytest.mark.timeout(180)
def test_durable_redis_sigkilled_mid_flow_both_sides_carry_on(tmp_path: Path) -> None:
    pair = start_pair(tmp_path / "valkey")  # its own server: this test kills it
    keys = Keys("chaos:")
    sent, db = tmp_path / "sent.txt", tmp_path / "effects.db"
    base = {"url": pair.durable.url, "prefix": keys.prefix}
    consumer = Peer("consume", {**base, "name": "trader-1", "db": str(db)}, tmp_path)
    publisher = Peer("publish", {**base, **OPEN_ENDED, "out": str(sent)}, tmp_path)
    try:
        consumer.start()
        publisher.start()
        for _ in range(2):
            wait_confirmed(sent, len(confirmed(sent)) + 600, publisher)  # about a second
            pid = pair.durable.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            # Down for longer than redis-py's own retries (about 0.7 s), so both sides see it.
            time.sleep(1.5)
            pair.durable.start()  # same port and folder: the AOF is replayed
            # Both make progress again before the next kill: two separate outages.
            mark = len(confirmed(sent)) + 5
            wait_confirmed(sent, mark + 1, publisher)
            wait_handled(db, {confirmed(sent)[mark]}, consumer, timeout=30)
        wait_confirmed(sent, len(confirmed(sent)) + 300, publisher)
        assert publisher.terminate(timeout=30) == 0, publisher.log()
        wait_handled(db, set(confirmed(sent)), consumer, timeout=60)
        check_end_state(pair, keys, sent, db)
        assert consumer.terminate() == 0, consumer.log()
        assert publisher.log(tail=10**6).count("publishing resumed") == 2, publisher.log()
        assert "reconnected after" in consumer.log()
        counters = json.loads((tmp_path / "consume-1.out").read_text().splitlines()[-1])
        assert counters["reconnects"] >= 1, counters  # by itself: the same process throughout
    finally:
        publisher.stop()
        consumer.stop()
        pair.durable.stop()
        pair.cache.stop()


@pytest.mark.timeout(180)
def test_consumer_sigkilled_mid_flow_resumes_under_its_name(
    tmp_path: Path, redis_pair: RedisPair
) -> None:
    keys = Keys("chaos2:")
    sent, db = tmp_path / "sent.txt", tmp_path / "effects.db"
    base = {"url": redis_pair.durable.url, "prefix": keys.prefix}
    consumer = Peer("consume", {**base, "name": "trader-1", "db": str(db)}, tmp_path)
    publisher = Peer("publish", {**base, **OPEN_ENDED, "out": str(sent)}, tmp_path)
    try:
        consumer.start()
        publisher.start()
        for _ in range(3):
            wait_confirmed(sent, len(confirmed(sent)) + 400, publisher)
            consumer.kill()  # mid-batch, between commit and XACK as likely as anywhere
            consumer.start()
        wait_confirmed(sent, len(confirmed(sent)) + 300, publisher)
        assert publisher.terminate(timeout=30) == 0, publisher.log()
        wait_handled(db, set(confirmed(sent)), consumer, timeout=60)
        calls = check_end_state(redis_pair, keys, sent, db)
        assert calls >= len(confirmed(sent))
        assert consumer.terminate() == 0, consumer.log()
    finally:
        publisher.stop()
        consumer.stop()
