"""Durable jobs on Celery + Redis: specs, the job board, the client, the worker, the reconciler.

The dashboard and the CLI use :class:`~traderunner.jobs.client.JobClient` only; workers run
:func:`~traderunner.jobs.worker.run_worker`.
"""

from traderunner.jobs.client import JobClient
from traderunner.jobs.spec import BacktestSpec, NoopSpec, SweepSpec, spec_from_dict, validate

__all__ = ["BacktestSpec", "JobClient", "NoopSpec", "SweepSpec", "spec_from_dict", "validate"]
