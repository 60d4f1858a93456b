"""``celery -A traderunner.jobs.celery_app ...``: the app for Celery's own tools.

Reads the settings from the environment (and ``TRADERUNNER_CONFIG``) when imported, which is
what Celery's ``-A`` needs. ``celery -A traderunner.jobs.celery_app worker`` then runs what
``traderunner worker`` runs: the same app and settings (JSON only, acks late, the queues
interactive then batch), the same checks before it starts, and the same services beside the
consumer (reconciler, stall watchdog, advertiser, engine warm-up), named after its Celery node.
``inspect``, ``control`` and ``flower`` use the same app. What ``traderunner worker`` adds on
its command line (``--without-gossip --without-mingle``, a node name) are Celery options a
Celery user may give or not.
"""

import sys

from traderunner.config import load_settings
from traderunner.jobs.worker import build_app, check_worker_settings, install_worker_services

settings = load_settings()
app = build_app(settings)

if "worker" in sys.argv[1:]:  # the worker subcommand, not inspect/control/flower
    check_worker_settings(settings)
    install_worker_services(app, settings)
