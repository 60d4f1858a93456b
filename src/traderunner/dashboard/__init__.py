"""The web dashboard (Plotly Dash on Flask, served by waitress).

``app.create_app(settings)`` builds the Dash app with its login wall; ``traderunner dashboard``
serves it. Layout: ``web.py`` (sessions, the wall, login/logout), ``sessions.py`` (the Redis
session hashes), ``accounts.py`` (users, passwords, checked logins), ``layout.py`` (the shell and
its navigation), ``pages/`` (one module per page), ``readmodels/`` (what pages read, as frozen
values), ``components.py`` (cards, tables and charts in one look).

The dashboard reaches jobs through ``jobs.client`` and read models only: it never imports the
engine, numba, the Celery tasks or the worker (an import-linter contract holds this). Importing
this package imports nothing heavy: Dash is loaded by ``app``.
"""
