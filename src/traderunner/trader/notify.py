"""Notifications of fills, rejections and the kill switch: webhooks and Telegram, off the loop.

:meth:`Notifier.send` puts the event on a bounded queue and returns at once; one background
thread posts each event to every configured target with ``retries`` retries (exponential
backoff), so a slow or dead receiver never delays the trading loop. When the queue is full
(a receiver down for long) new events are dropped and counted, not waited for.

Targets (settings):

* ``notify_webhooks``: each URL gets ``POST`` of the event as JSON:
  ``{"event": "fill"|"rejection"|"kill_switch", "at": ISO time, ...fields}``;
* ``notify_telegram_token`` + ``notify_telegram_chat``: Telegram's bot API
  ``POST {notify_telegram_api}/bot{token}/sendMessage`` with ``{"chat_id", "text"}``, one line
  of text per event. The token is a secret: it is never logged.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from traderunner.config import Settings

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Telegram:
    api: str
    token: str
    chat: str

    @property
    def url(self) -> str:
        return f"{self.api.rstrip('/')}/bot{self.token}/sendMessage"


@dataclass(slots=True)
class NotifyCounters:
    sent: int = 0  # deliveries that a target accepted (2xx)
    failed: int = 0  # deliveries given up after every retry
    dropped: int = 0  # events not queued: the queue was full


def text_of(event: Mapping[str, Any]) -> str:
    """One line for a chat message."""
    kind = event.get("event")
    if kind == "fill":
        return (
            f"traderunner fill: {event['side']} {event['units']:g} {event['symbol']} @ "
            f"{event['price']:g} ({event['live']}, {event['reason']})"
        )
    if kind == "rejection":
        return (
            f"traderunner rejected an order of {event['live']} on {event['symbol']}: "
            f"{event['check']}: {event['reason']}"
        )
    if kind == "kill_switch":
        return f"traderunner kill switch {event['state']}: {event.get('reason', '')}"
    return f"traderunner {kind}: {dict(event)}"


class Notifier:
    """Posts events in the background (module docstring). Close it to drain the queue."""

    def __init__(
        self,
        webhooks: Sequence[str] = (),
        telegram: Telegram | None = None,
        *,
        retries: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.2,
    ) -> None:
        self.webhooks = tuple(webhooks)
        self.telegram = telegram
        self.retries = retries
        self.backoff = backoff
        self.counters = NotifyCounters()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._client = httpx.Client(timeout=timeout)
        self._thread: threading.Thread | None = None
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
            self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        hooks = [u.strip() for u in settings.notify_webhooks.split(",") if u.strip()]
        token = settings.notify_telegram_token.get_secret_value()
        telegram = (
            Telegram(settings.notify_telegram_api, token, settings.notify_telegram_chat)
            if token and settings.notify_telegram_chat
            else None
        )
        return cls(
            hooks, telegram, retries=settings.notify_retries, timeout=settings.notify_timeout
        )

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks) or self.telegram is not None

    def send(self, event: str, **fields: Any) -> None:
        """Queue one event; returns at once (dropped and counted when the queue is full)."""
        if not self.enabled:
            return
        body = {"event": event, "at": datetime.now(UTC).isoformat(), **fields}
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.counters.dropped += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up; False on timeout."""
        end = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        if self._thread is not None:
            self.flush(timeout)
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join(timeout=1.0)
        self._client.close()

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                for url in self.webhooks:
                    self._post(url, body, url)
                if self.telegram is not None:
                    message = {"chat_id": self.telegram.chat, "text": text_of(body)}
                    self._post(self.telegram.url, message, "telegram")
            finally:
                self._queue.task_done()

    def _post(self, url: str, body: Mapping[str, Any], label: str) -> None:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                reply = self._client.post(url, json=dict(body))
                if reply.status_code < 300:
                    self.counters.sent += 1
                    return
                problem = f"HTTP {reply.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        self.counters.failed += 1
        log.warning("notify: %s failed after %d attempts (%s)", label, self.retries + 1, problem)
