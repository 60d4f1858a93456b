"""Fixtures for the market-data tests: small candle files written into tmp_path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from .candle_rows import GOOD_ROWS, HEADER, WriteCsv


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """``write_csv(rows=GOOD_ROWS, header=HEADER, name="bars.csv") -> Path``."""

    def write(
        rows: Sequence[str] = GOOD_ROWS, header: str | None = HEADER, name: str = "bars.csv"
    ) -> Path:
        path = tmp_path / name
        lines = ([header] if header is not None else []) + list(rows)
        path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        return path

    return write
