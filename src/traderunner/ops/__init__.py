"""Operations: ``traderunner up`` (a supervised single-machine deployment), health checks and
``doctor``, and the files a server deployment needs (systemd units, Redis configs).

ops sits between the CLI and the dashboard (pyproject's layers contract): it starts the other
processes as separate programs and talks to them only over their public interfaces (Redis,
HTTP, Celery's control channel), so it never imports the engine or the worker side of jobs.
"""
