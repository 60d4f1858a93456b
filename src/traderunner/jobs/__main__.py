"""``python -m traderunner.jobs`` runs a worker from the environment's settings.

The same as ``traderunner worker`` without the CLI (used by tests and systemd units).
Arguments: ``[--concurrency N] [--queues interactive,batch] [--pool prefork|solo|threads]
[--config FILE]``.
Exits with the worker's code: 0 after a warm shutdown, non-zero when Celery gave up.
"""

from __future__ import annotations

import argparse
import logging
import sys

from traderunner.config import load_settings
from traderunner.domain.jobs import Queue
from traderunner.jobs.worker import run_worker


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m traderunner.jobs")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--queues", default="interactive,batch")
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--name", default=None)
    parser.add_argument("--config", default=None, help="settings file (TOML)")
    args = parser.parse_args()
    logging.basicConfig(level=args.loglevel)
    queues = tuple(Queue(q.strip()) for q in args.queues.split(",") if q.strip())
    code = run_worker(
        load_settings(**({"config": args.config} if args.config else {})),
        concurrency=args.concurrency,
        queues=queues,
        loglevel=args.loglevel,
        pool=args.pool,
        name=args.name,
    )
    sys.exit(code)  # non-zero after an unrecoverable error: the supervisor restarts us


if __name__ == "__main__":
    main()
