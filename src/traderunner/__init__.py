"""traderunner: trading research and paper trading around a fast backtest engine.

The package layout is the architecture; see ``docs/architecture.md``.
"""

__version__ = "0.1.0"
