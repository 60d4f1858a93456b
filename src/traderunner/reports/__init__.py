"""Reports of saved runs: text formatting, Plotly figures, a self-contained HTML page.

Pure presentation over what ``store.runs`` returns (records and DataFrames): no store, no
Redis, no engine, so the CLI (``results export``) and the dashboard draw the same figures.
Plotly is imported only when a figure is built.
"""

from traderunner.reports.text import format_metric, grid_text, params_text, settings_text

__all__ = ["format_metric", "grid_text", "params_text", "settings_text"]
