"""Putting a job's message on the broker, and finding which jobs the broker holds.

A message carries only the job id (``task_id`` = job id; the record in the store is the spec).
Priorities: kombu's Redis transport keeps one list per queue and priority step and pops step
0 first, then 1, ...; within a step ``interactive`` before ``batch`` (the worker lists them in
that order and the ``priority`` queue-order strategy keeps it). We map interactive jobs to
steps 0-4 and batch jobs to 5-9, so an interactive job always goes before any batch job.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from celery import Celery

from traderunner.domain.jobs import JobRecord, Queue
from traderunner.jobs.app import PRIORITY_STEPS, TASK_RUN_JOB
from traderunner.redisdb.keys import Keys


def kombu_priority(queue: Queue, level: int = 0) -> int:
    """Broker priority step for a job: ``level`` 0 (most urgent) .. 4 within its queue."""
    level = min(max(int(level), 0), 4)
    return level if queue is Queue.INTERACTIVE else 5 + level


def enqueue(app: Celery, record: JobRecord) -> None:
    """Publish the job's message (raises redis/kombu errors when the broker is down)."""
    app.send_task(
        TASK_RUN_JOB,
        args=[record.id],
        task_id=record.id,
        queue=record.queue.value,
        routing_key=record.queue.value,
        priority=record.priority,
    )


def queue_lists(keys: Keys) -> list[tuple[Queue, str]]:
    """The Redis lists kombu uses for our queues, highest priority first, with their queue."""
    return [
        (
            queue,
            keys.celery_queue(queue.value)
            if step == 0
            else keys.celery_queue_step(queue.value, step),
        )
        for step in PRIORITY_STEPS
        for queue in Queue
    ]


def queued_job_ids(durable: redis.Redis, keys: Keys) -> set[str]:
    """Job ids of every message waiting in our queues (not the ones a worker holds)."""
    ids: set[str] = set()
    pipe = durable.pipeline(transaction=False)
    for _, key in queue_lists(keys):
        pipe.lrange(key, 0, -1)
    for messages in pipe.execute():
        for raw in messages:
            job_id = _task_id(raw)
            if job_id:
                ids.add(job_id)
    return ids


def queue_lengths(durable: redis.Redis, keys: Keys) -> dict[str, int]:
    """Messages waiting per queue (all priority steps together), for status pages."""
    pipe = durable.pipeline(transaction=False)
    lists = queue_lists(keys)
    for _, key in lists:
        pipe.llen(key)
    totals = {q.value: 0 for q in Queue}
    for (queue, _), n in zip(lists, pipe.execute(), strict=True):
        totals[queue.value] += int(n)
    return totals


def _task_id(raw: Any) -> str | None:
    try:
        message = json.loads(raw)
        return str(message["headers"]["id"])
    except (ValueError, KeyError, TypeError):
        return None
