"""Rows of small, valid candle files for the file tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

HEADER = "time,open,high,low,close,volume"
# Six valid 5-minute bars; row i of the data is line i + 2 of the file.
GOOD_ROWS = (
    "2024-01-02T14:30:00Z,100.0,101.0,99.5,100.5,1200",
    "2024-01-02T14:35:00Z,100.5,101.5,100.0,101.0,900",
    "2024-01-02T14:40:00Z,101.0,101.2,100.1,100.2,700",
    "2024-01-02T14:45:00Z,100.2,100.9,99.8,100.8,650",
    "2024-01-02T14:50:00Z,100.8,102.0,100.7,101.9,1500",
    "2024-01-02T14:55:00Z,101.9,102.1,101.0,101.1,800",
)

# write_csv(rows=GOOD_ROWS, header=HEADER, name="bars.csv") -> Path (the conftest fixture)
WriteCsv = Callable[..., Path]
