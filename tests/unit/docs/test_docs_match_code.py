"""The docs quote the code's contracts; these tests fail when the two drift apart."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from traderunner.engine import kernel, metrics, options
from traderunner.redisdb import keys

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("module", [kernel, metrics, options], ids=lambda m: m.__name__)
def test_engine_doc_quotes_the_module_contract(module: object) -> None:
    doc = _normalise((DOCS / "engine.md").read_text())
    contract = inspect.getdoc(module) or ""
    assert _normalise(contract) in doc, f"docs/engine.md is out of date for {module}"


def test_redis_key_table_is_generated_from_keys_py() -> None:
    table = (DOCS / "redis-keys.md").read_text()
    assert keys.markdown_table() in table, "regenerate: python -m traderunner.redisdb.keys"
