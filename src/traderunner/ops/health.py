"""Probes: is a child of ``up`` healthy? Each answers None (healthy) or why not, in a phrase."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from traderunner.config import Settings
from traderunner.ops.children import Probe
from traderunner.redisdb.embedded import embedded_servers


class Prober:
    """Runs :class:`Probe` checks for one deployment; holds the Celery app it pings with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._celery: Any = None

    def check(self, probe: Probe, *, supervisor_state: str = "RUNNING") -> str | None:
        if supervisor_state != "RUNNING":
            return f"not running ({supervisor_state.lower()})"
        if probe.kind == "running":
            return None
        if probe.kind == "redis":
            server = {s.role: s for s in embedded_servers(self.settings)}[probe.target]
            state = server.ping()
            return None if state == "ok" else f"PING: {state}"
        if probe.kind == "http":
            try:
                response = httpx.get(probe.target, timeout=2.0)
            except httpx.HTTPError as exc:
                return f"GET {probe.target}: {type(exc).__name__}"
            if response.status_code in probe.ok_status:
                return None
            return f"GET {probe.target}: HTTP {response.status_code}"
        if probe.kind == "celery":
            replies = self.celery_ping()
            return None if replies else "no worker answers Celery's ping yet"
        raise ValueError(f"unknown probe kind {probe.kind!r}")

    def celery_ping(self, timeout: float = 1.0) -> list[str]:
        """The node names of the workers that answer Celery's control ping."""
        from traderunner.jobs.app import make_celery

        if self._celery is None:
            self._celery = make_celery(self.settings)
        try:
            replies = self._celery.control.ping(timeout=timeout) or []
        except Exception:  # broker down or restarting: no worker answers
            return []
        return [name for reply in replies for name in reply]

    def close(self) -> None:
        if self._celery is not None:
            with contextlib.suppress(Exception):
                self._celery.close()
            self._celery = None
