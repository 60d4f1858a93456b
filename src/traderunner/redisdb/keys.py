"""The whole Redis schema: every key, stream and channel traderunner uses, with its TTL.

One prefix (``Settings.redis_prefix``, default ``tr:``) in front of everything, including
Celery's own keys (kombu ``global_keyprefix``), so several deployments can share one server and
``SCAN tr:*`` shows all of ours. Build keys only through :class:`Keys`; no f-string key anywhere
else, and Lua scripts receive keys through ``KEYS[]``.

``docs/redis-keys.md`` is generated from :data:`SCHEMA` (``python -m traderunner.redisdb.keys``).
"""

from __future__ import annotations

from dataclasses import dataclass

# TTLs in seconds, beside the keys they belong to. None = no TTL (durable by design).
JOB_STATE_TTL = 7 * 86400  # job hash: progress and state, mirrored in the store
JOB_HEARTBEAT_TTL = 15  # a running job refreshes it every few seconds
JOB_CANCEL_TTL = 7 * 86400  # cancel flag, checked between chunks
JOB_RESULT_LOCK_TTL = 300  # guards the idempotent result write
RECONCILER_LOCK_TTL = 30  # one reconciler pass at a time across processes
WORKER_TTL = 30  # worker presence, refreshed by the worker's heartbeat


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One entry of the schema, for docs and the schema test."""

    builder: str
    pattern: str
    type: str
    ttl: int | None
    role: str  # "durable" or "cache"
    doc: str


SCHEMA: tuple[KeySpec, ...] = (
    KeySpec(
        "job",
        "job:{job_id}",
        "hash",
        JOB_STATE_TTL,
        "durable",
        "state, progress, attempts, worker, timestamps, error of one job",
    ),
    KeySpec(
        "job_heartbeat",
        "job:{job_id}:hb",
        "string",
        JOB_HEARTBEAT_TTL,
        "durable",
        "present while a worker runs the job; expiry means the worker died",
    ),
    KeySpec(
        "job_cancel",
        "job:{job_id}:cancel",
        "string",
        JOB_CANCEL_TTL,
        "durable",
        "set by cancel; queued jobs never start, running ones stop at the next chunk",
    ),
    KeySpec(
        "job_result_lock",
        "job:{job_id}:result-lock",
        "string",
        JOB_RESULT_LOCK_TTL,
        "durable",
        "held while one delivery writes the result (idempotent write)",
    ),
    KeySpec(
        "job_events",
        "events:job:{job_id}",
        "channel",
        None,
        "durable",
        "PUBLISH of every progress/state change of one job",
    ),
    KeySpec(
        "jobs_events",
        "events:jobs",
        "channel",
        None,
        "durable",
        "PUBLISH of every job's state changes (dashboards, `jobs follow`)",
    ),
    KeySpec(
        "reconciler_lock",
        "lock:reconciler",
        "string",
        RECONCILER_LOCK_TTL,
        "durable",
        "one reconciler pass at a time across all processes",
    ),
    KeySpec(
        "worker",
        "worker:{name}",
        "string",
        WORKER_TTL,
        "durable",
        "presence of a traderunner worker process",
    ),
    KeySpec(
        "celery",
        "celery… (kombu global_keyprefix)",
        "various",
        None,
        "durable",
        "Celery's queues, unacked index and results, all under the same prefix",
    ),
)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builders bound to one prefix. Pass one instance down; never build keys by hand."""

    prefix: str = "tr:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def job_heartbeat(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:hb"

    def job_cancel(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:cancel"

    def job_result_lock(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:result-lock"

    def job_events(self, job_id: str) -> str:
        return f"{self.prefix}events:job:{job_id}"

    def jobs_events(self) -> str:
        return f"{self.prefix}events:jobs"

    def reconciler_lock(self) -> str:
        return f"{self.prefix}lock:reconciler"

    def worker(self, name: str) -> str:
        return f"{self.prefix}worker:{name}"

    def celery(self) -> str:
        """The kombu ``global_keyprefix`` for Celery's own keys."""
        return self.prefix

    def everything(self) -> str:
        """SCAN pattern matching every key of this deployment."""
        return f"{self.prefix}*"


def markdown_table() -> str:
    """The schema as a Markdown table (for docs/redis-keys.md)."""
    lines = [
        "| builder | key (after the prefix) | type | TTL (s) | instance | what |",
        "|---|---|---|---|---|---|",
    ]
    for spec in SCHEMA:
        ttl = "none" if spec.ttl is None else str(spec.ttl)
        lines.append(
            f"| `{spec.builder}` | `{spec.pattern}` | {spec.type} | {ttl} | {spec.role} | "
            f"{spec.doc} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(), end="")
