"""``python -m traderunner`` runs the CLI."""

from traderunner.cli import main

main()
