"""The Celery app factory: every setting the design relies on, in one place.

* JSON only: tasks, results and accepted content; a pickled message is rejected unread.
* ``task_acks_late`` + ``task_reject_on_worker_lost`` + prefetch 1: a message is acked only
  after its job finished, and a worker that dies mid-job gives the message back.
* One visibility timeout, 2.5x the job time limit (``Settings.job_time_limit``), which Celery
  enforces as the hard task time limit; the soft limit comes a little earlier.
* Queues ``interactive`` (served first: kombu's ``priority`` queue order keeps the order the
  worker lists them in) and ``batch``; priorities 0..9 within a queue.
* Every key under the deployment's prefix (kombu ``global_keyprefix``).
* Results that matter go to the store; Celery's result backend is not used (tasks ignore it).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange
from kombu import Queue as KombuQueue

from traderunner.config import Settings
from traderunner.domain.jobs import Queue
from traderunner.redisdb.connection import resolve_urls

TASK_RUN_JOB = "traderunner.run_job"
PRIORITY_STEPS = list(range(10))


def visibility_timeout(settings: Settings) -> int:
    """Seconds before an unacked message is redelivered: above twice the job time limit."""
    return int(settings.job_time_limit * 2.5)


def celery_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    transport = {
        "global_keyprefix": settings.redis_prefix,
        "visibility_timeout": visibility_timeout(settings),
        "queue_order_strategy": "priority",
        "priority_steps": PRIORITY_STEPS,
        "sep": ":",
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.job_time_limit,
        "task_soft_time_limit": max(settings.job_time_limit - 5, 1),
        # Each queue on its own exchange and key: a bare Queue(name) inherits the default
        # queue's exchange and key, binding both queues to ("batch", "batch"), so a message
        # published by key (Flower, ``celery call``) would land in both lists.
        "task_queues": [
            KombuQueue(q.value, Exchange(q.value, type="direct"), routing_key=q.value)
            for q in Queue
        ],
        "task_default_queue": Queue.BATCH.value,
        "task_default_priority": 5,
        "task_create_missing_queues": False,
        "worker_hijack_root_logger": False,
        # Off until Flower asks: it turns task events on over remote control every few
        # seconds while it runs. Sending them always cost a quarter of the worker's main
        # process per trivial job (benchmarks/jobs.py), for a monitor that is mostly off.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


def make_celery(settings: Settings, *, broker_url: str | None = None) -> Celery:
    """A Celery app for these settings (nothing connects until it is used)."""
    url = broker_url or resolve_urls(settings).durable
    # No fixups: Celery's default Django fixup imports celery.worker into every process that
    # builds an app, the job client (and so the dashboard) included.
    app = Celery("traderunner", set_as_current=False, fixups=[])
    app.conf.update(celery_config(settings, url))
    return app
