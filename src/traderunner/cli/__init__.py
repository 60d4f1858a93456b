"""The ``traderunner`` command line (Typer + Rich).

``main`` is the console script (``traderunner = "traderunner.cli:main"``); ``app`` is the Typer
app, for ``typer.testing.CliRunner`` and for embedding.
"""

from traderunner.cli.app import app, main

__all__ = ["app", "main"]
