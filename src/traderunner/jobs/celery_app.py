"""``celery -A traderunner.jobs.celery_app ...``: the app for Celery's own tools (Flower).

Reads the settings from the environment when imported, which is what Celery's ``-A`` needs;
traderunner's own entrypoints build their app with :func:`traderunner.jobs.worker.build_app`.
"""

from traderunner.config import load_settings
from traderunner.jobs.worker import build_app

app = build_app(load_settings())
