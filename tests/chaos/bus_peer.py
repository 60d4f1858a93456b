"""A publisher or a consumer of the bus in its own process, for the bus chaos tests (run with
``python -m tests.chaos.bus_peer ROLE SPEC_JSON``; not a test module).

SPEC: ``url``, ``prefix``, and for

* ``publish``: envelopes on ``signals`` at ``rate`` per second, ids ``msg-000000``..., until
  SIGTERM (or ``n``); after each ``publish`` returns (the entry is acknowledged by Redis),
  appends the envelope id to ``out`` (flushed), so the test knows exactly what was
  confirmed. Exit 0 when stopped.
* ``consume``: consumer ``name`` of group ``trader``, whose handler is idempotent by envelope
  id the way the trader's must be: in one SQLite transaction (file ``db``) it records the call
  in ``calls`` and the effect in ``effects`` (primary key = the envelope id, so a repeat
  changes nothing), commits, then returns. Runs until SIGTERM (exit 0).

Both print ``ready`` once connected; the bus logs its warnings on stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import sys
import time
from typing import Any

from traderunner.bus import BusOptions, Consumer, Delivery, Envelope, Publisher
from traderunner.redisdb.connection import connect
from traderunner.redisdb.keys import Keys

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (id TEXT PRIMARY KEY, n INTEGER, entry_id TEXT)",
    "CREATE TABLE IF NOT EXISTS calls (id TEXT, deliveries INTEGER)",
)


def publish(spec: dict[str, Any]) -> None:
    client = connect(spec["url"], name="bus-peer-publisher")
    publisher = Publisher(client, Keys(spec["prefix"]), BusOptions(reconnect_for=60))
    client.ping()
    print("ready", flush=True)
    pace = 1.0 / float(spec["rate"])
    began = time.monotonic()
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    with open(spec["out"], "a") as out:
        for i in range(int(spec["n"])):
            if stopped:
                return
            ident = f"msg-{i:06d}"
            publisher.publish(Envelope.new("signals", "signal", {"n": i}, id=ident))
            out.write(ident + "\n")
            out.flush()
            ahead = began + (i + 1) * pace - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def consume(spec: dict[str, Any]) -> None:
    db = sqlite3.connect(spec["db"], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in SCHEMA:
        db.execute(statement)

    def handle(delivery: Delivery) -> None:
        envelope = delivery.envelope
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO calls VALUES (?, ?)", (envelope.id, delivery.deliveries))
        db.execute(
            "INSERT OR IGNORE INTO effects VALUES (?, ?, ?)",
            (envelope.id, envelope.payload["n"], delivery.entry_id),
        )
        db.execute("COMMIT")  # the effect is committed before the handler returns

    client = connect(spec["url"], name="bus-peer-consumer")
    consumer = Consumer(
        client,
        Keys(spec["prefix"]),
        group="trader",
        name=spec["name"],
        topics=["signals"],
        handler=handle,
        accept={"signal": {1}},
        options=BusOptions(claim_idle=2.0, block=0.2),
        start="0",
    )
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    consumer.poll(block=0.01)
    print("ready", flush=True)
    consumer.run()
    print(json.dumps(vars_of(consumer)), flush=True)


def vars_of(consumer: Consumer) -> dict[str, int]:
    c = consumer.counters
    return {"handled": c.handled, "reconnects": c.reconnects, "claimed": c.claimed}


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    role, spec = sys.argv[1], json.loads(sys.argv[2])
    {"publish": publish, "consume": consume}[role](spec)


if __name__ == "__main__":
    main()
