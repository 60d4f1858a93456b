"""Helpers of the bus tests: fast options, a recording handler, a poll-until loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from traderunner.bus import BusOptions, Consumer, Delivery

#: Short waits so a test that claims or retries stays well under a second.
FAST = BusOptions(claim_idle=0.3, block=0.05, retry_delay=0.01, retry_cap=0.05, max_deliveries=3)


@dataclass
class Recorder:
    """A handler that records what it was given; ``fail(delivery)`` may return an error to raise."""

    seen: list[Delivery] = field(default_factory=list)
    fail: Callable[[Delivery], BaseException | None] = lambda _: None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, delivery: Delivery) -> None:
        with self.lock:
            self.seen.append(delivery)
        error = self.fail(delivery)
        if error is not None:
            raise error

    @property
    def ids(self) -> list[str]:
        return [d.envelope.id for d in self.seen]


def drain(consumer: Consumer, until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``consumer`` until ``until()`` holds (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the consumer did not get there in time"
        consumer.poll()
