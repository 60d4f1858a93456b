"""Every key builder in the schema exists, uses the prefix and matches its documented pattern."""

from __future__ import annotations

import inspect
import re

import pytest

from traderunner.redisdb import keys as keys_module
from traderunner.redisdb.keys import SCHEMA, Keys


def _fill(pattern: str) -> tuple[str, dict[str, str]]:
    args = {name: f"<{name}>" for name in re.findall(r"{(\w+)}", pattern)}
    return pattern.format(**args), args


@pytest.mark.parametrize(
    "spec", [s for s in SCHEMA if s.builder != "celery"], ids=lambda s: s.builder
)
def test_builder_matches_schema(spec: keys_module.KeySpec) -> None:
    keys = Keys("pfx:")
    builder = getattr(keys, spec.builder)
    expected, args = _fill(spec.pattern)
    assert builder(**args) == "pfx:" + expected
    assert spec.role in ("durable", "cache")
    assert spec.doc


def test_every_public_builder_is_documented() -> None:
    documented = {s.builder for s in SCHEMA}
    public = {
        name
        for name, member in inspect.getmembers(Keys, inspect.isfunction)
        if not name.startswith("_") and name != "everything"
    }
    assert public == documented


def test_prefix_isolates_deployments() -> None:
    a, b = Keys("a:"), Keys("b:")
    assert a.job("x") != b.job("x")
    assert a.celery() == "a:" and a.everything() == "a:*"


def test_ttls_are_positive_where_set() -> None:
    for spec in SCHEMA:
        assert spec.ttl is None or spec.ttl > 0
    assert keys_module.JOB_HEARTBEAT_TTL < keys_module.JOB_STATE_TTL


def test_markdown_table_lists_every_key() -> None:
    table = keys_module.markdown_table()
    for spec in SCHEMA:
        assert f"`{spec.builder}`" in table
