"""Which workers are live, and which strategies (and versions) each has loaded.

Every worker advertises itself in the durable Redis while it consumes: a hash
``worker:{node}`` (host, pid, queues, start time, traderunner version, and its strategies as
JSON ``{name: version}``) with a TTL of ``WORKER_TTL`` seconds, refreshed every third of it by
a thread in the worker's main process, and its node name in the set ``workers``. A worker that
dies stops refreshing, so its hash expires; readers drop such members from the set.

The job client reads this at submit time (:func:`check_strategy`): when workers are live and
none of them has the job's strategy, the job is refused, with the command that starts a worker
that has it; when no worker is live the job is queued all the same (jobs wait durably).

A strategy's *version* is the first 12 hex digits of the SHA-256 of the source file that
defines its class and of its parameter specs. A worker whose version of a strategy differs
from the submitting machine's still runs the job, with its own version; the client warns.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import redis

from traderunner import __version__
from traderunner.redisdb.keys import WORKER_TTL, Keys
from traderunner.strategies import Strategy, available_strategies, strategy_origin

log = logging.getLogger(__name__)


@functools.cache
def strategy_version(cls: type[Strategy]) -> str:
    """12 hex digits identifying the code and parameters of ``cls`` (see the module doc).

    Computed once per class and process, so it describes the code that was loaded even when
    its file changes on disk afterwards.
    """
    digest = hashlib.sha256()
    try:
        digest.update(Path(inspect.getfile(cls)).read_bytes())
    except (OSError, TypeError):  # defined where no file holds it (an interactive session)
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    specs = [
        [s.name, s.type.__name__, repr(s.default), repr(s.low), repr(s.high), repr(s.choices)]
        for s in cls.param_specs()
    ]
    digest.update(json.dumps(specs).encode())
    return digest.hexdigest()[:12]


def loaded_strategies() -> dict[str, str]:
    """``{name: version}`` of every strategy this process has registered."""
    return {name: strategy_version(cls) for name, cls in available_strategies().items()}


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker as it advertised itself."""

    node: str
    host: str
    pid: int
    queues: tuple[str, ...]
    started: str  # ISO-8601 UTC
    version: str  # traderunner's
    strategy_path: str
    strategies: Mapping[str, str] = field(default_factory=dict)  # name -> strategy version

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "started": self.started,
            "version": self.version,
            "strategy_path": self.strategy_path,
            "strategies": dict(self.strategies),
        }


def advertise(durable: redis.Redis, keys: Keys, info: WorkerInfo) -> None:
    """Write (or refresh) ``info`` with its TTL; raises redis errors."""
    key = keys.worker(info.node)
    pipe = durable.pipeline(transaction=True)
    pipe.hset(
        key,
        mapping={
            "host": info.host,
            "pid": str(info.pid),
            "queues": ",".join(info.queues),
            "started": info.started,
            "version": info.version,
            "strategy_path": info.strategy_path,
            "strategies": json.dumps(dict(info.strategies), sort_keys=True),
        },
    )
    pipe.expire(key, WORKER_TTL)
    pipe.sadd(keys.workers(), info.node)
    pipe.execute()


def withdraw(durable: redis.Redis, keys: Keys, node: str) -> None:
    """Remove a worker's advertisement (on a clean shutdown); raises redis errors."""
    pipe = durable.pipeline(transaction=True)
    pipe.delete(keys.worker(node))
    pipe.srem(keys.workers(), node)
    pipe.execute()


def live_workers(durable: redis.Redis, keys: Keys) -> list[WorkerInfo]:
    """Every worker whose advertisement has not expired, by node name; raises redis errors.

    Two round trips: the set, then every hash in one pipeline. Members whose hash expired are
    removed from the set on the way.
    """
    nodes = sorted(_text(n) for n in cast(set[Any], durable.smembers(keys.workers())))
    if not nodes:
        return []
    pipe = durable.pipeline(transaction=False)
    for node in nodes:
        pipe.hgetall(keys.worker(node))
    found: list[WorkerInfo] = []
    gone: list[str] = []
    for node, raw in zip(nodes, pipe.execute(), strict=True):
        data = {_text(k): _text(v) for k, v in (raw or {}).items()}
        if not data:
            gone.append(node)
            continue
        try:
            strategies = json.loads(data.get("strategies") or "{}")
        except ValueError:
            strategies = {}
        found.append(
            WorkerInfo(
                node=node,
                host=data.get("host", ""),
                pid=int(data.get("pid") or 0),
                queues=tuple(q for q in data.get("queues", "").split(",") if q),
                started=data.get("started", ""),
                version=data.get("version", ""),
                strategy_path=data.get("strategy_path", ""),
                strategies={str(k): str(v) for k, v in dict(strategies).items()},
            )
        )
    if gone:
        durable.srem(keys.workers(), *gone)
    return found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class StrategyCheck:
    """What the live workers know of one strategy, against this process's version of it."""

    strategy: str
    version: str  # here, on the submitting machine
    workers: tuple[WorkerInfo, ...]  # every live worker
    having: tuple[str, ...]  # nodes that have the strategy
    other_versions: Mapping[str, str]  # node -> its different version

    @property
    def refused(self) -> bool:
        """Workers are live and none of them has the strategy."""
        return bool(self.workers) and not self.having

    def refusal(self) -> str:
        nodes = ", ".join(w.node for w in self.workers)
        return (
            f"no running worker has strategy {self.strategy!r} ({len(self.workers)} live: "
            f"{nodes}); start one that has it: {start_hint(self.strategy)}"
        )

    def notes(self) -> list[str]:
        """Warnings for a job that was accepted (empty when every live worker is in step)."""
        if not self.workers:
            return [
                "no worker is running: the job waits in the queue until one starts "
                "(traderunner worker)"
            ]
        out: list[str] = []
        lacking = [w.node for w in self.workers if w.node not in self.having]
        if lacking:
            out.append(
                f"{len(lacking)} of {len(self.workers)} live workers lack strategy "
                f"{self.strategy!r} ({', '.join(lacking)}): a job one of them takes fails; "
                f"start them with it: {start_hint(self.strategy)}"
            )
        if self.other_versions:
            theirs = ", ".join(f"{n} has {v}" for n, v in sorted(self.other_versions.items()))
            out.append(
                f"strategy {self.strategy!r} differs between this machine ({self.version}) and "
                f"live workers ({theirs}): the job runs the worker's version; give every machine "
                "the same strategy files and restart the workers"
            )
        return out


def check_strategy(durable: redis.Redis, keys: Keys, cls: type[Strategy]) -> StrategyCheck:
    """Compare the live workers' copies of ``cls`` with this process's; raises redis errors."""
    workers = tuple(live_workers(durable, keys))
    mine = strategy_version(cls)
    having = tuple(w.node for w in workers if cls.name in w.strategies)
    other = {
        w.node: w.strategies[cls.name] for w in workers if w.strategies.get(cls.name, mine) != mine
    }
    return StrategyCheck(cls.name, mine, workers, having, other)


def start_hint(name: str) -> str:
    """The command (or step) that gives a worker the strategy ``name``, as this machine has it."""
    try:
        origin = strategy_origin(name)
    except Exception:  # not registered here either
        return "TRADERUNNER_STRATEGY_PATH=/folder/of/the/strategy traderunner worker"
    if origin == "built-in":
        return f"upgrade the workers to traderunner {__version__} and restart them"
    path = Path(origin)
    if path.suffix == ".py":
        return f"TRADERUNNER_STRATEGY_PATH={path.parent} traderunner worker"
    return f"install the package of {origin} where the workers run, then restart them"


class Advertiser(threading.Thread):
    """Keeps this worker's advertisement alive until :meth:`stop` (which withdraws it)."""

    def __init__(
        self,
        durable: redis.Redis,
        keys: Keys,
        node: str,
        queues: Sequence[str],
        strategy_path: str,
    ) -> None:
        super().__init__(name="traderunner-advertiser", daemon=True)
        self.durable = durable
        self.keys = keys
        self.info = WorkerInfo(
            node=node,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=tuple(queues),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            version=__version__,
            strategy_path=strategy_path,
            strategies=loaded_strategies(),
        )
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                advertise(self.durable, self.keys, self.info)
            except redis.RedisError as exc:  # back on the next round, once Redis is
                log.debug("worker advertisement not written: %s", exc)
            if self._stop_event.wait(WORKER_TTL / 3.0):
                break
        try:
            withdraw(self.durable, self.keys, self.info.node)
        except redis.RedisError as exc:  # it expires on its own
            log.debug("worker advertisement not withdrawn: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
