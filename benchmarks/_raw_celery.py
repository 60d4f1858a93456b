"""The raw-Celery baseline for benchmarks/jobs.py: one trivial task, nothing of ours.

Configured like our app where it matters for a fair comparison (JSON, acks_late, prefetch 1,
the same Redis server, a key prefix) but with Celery's own Redis result backend, which is how a
plain Celery user learns that a task finished.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("rawbench", set_as_current=False)
app.conf.update(
    broker_url=os.environ["RAW_BROKER_URL"],
    result_backend=os.environ["RAW_BROKER_URL"],
    broker_transport_options={"global_keyprefix": "raw:"},
    result_backend_transport_options={"global_keyprefix": "raw:"},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)


@app.task(name="rawbench.noop")
def noop(x: int) -> int:
    return x
