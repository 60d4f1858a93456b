"""The Redis schema: every builder makes the key written out here by hand, no two collide.

The expected keys are literals, not formatted from ``SCHEMA``: a changed pattern changes the
keys a running deployment already holds, and must fail here. Which keys a running system
really writes is checked in tests/integration/redisdb/test_keys_in_use.py.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from traderunner.config import Settings
from traderunner.redisdb import keys as keys_module
from traderunner.redisdb.keys import SCHEMA, Keys, owners

# builder, arguments, the key it must build under the prefix "tr:"
EXPECTED: list[tuple[str, dict[str, Any], str]] = [
    ("job", {"job_id": "ab12"}, "tr:job:ab12"),
    ("job_heartbeat", {"job_id": "ab12"}, "tr:job:ab12:hb"),
    ("job_cancel", {"job_id": "ab12"}, "tr:job:ab12:cancel"),
    ("job_events", {"job_id": "ab12"}, "tr:events:job:ab12"),
    ("jobs_events", {}, "tr:events:jobs"),
    ("reconciler_lock", {}, "tr:lock:reconciler"),
    ("workers", {}, "tr:workers"),
    ("worker", {"node": "w1@host"}, "tr:worker:w1@host"),
    ("ratelimit", {"name": "eodhd"}, "tr:ratelimit:eodhd"),
    ("ratelimit_quota", {"name": "eodhd", "quota": "day"}, "tr:ratelimit:eodhd:day"),
    (
        "ratelimit_subject",
        {"name": "login", "quota": "user", "subject": "ana"},
        "tr:ratelimit:login:user:ana",
    ),
    ("quota_spent", {"name": "eodhd", "quota": "day"}, "tr:quota-spent:eodhd:day"),
    ("fetch_lock", {"symbol": "AAPL.US", "timeframe": "M5"}, "tr:lock:fetch:AAPL.US:M5"),
    ("fetched_mark", {"symbol": "AAPL.US", "timeframe": "M5"}, "tr:fetched:AAPL.US:M5"),
    ("session", {"session_id": "s1d"}, "tr:session:s1d"),
    ("bus_stream", {"topic": "signals"}, "tr:bus:signals"),
    ("bus_dead", {"topic": "candles.M5"}, "tr:bus:candles.M5:dead"),
    ("bus_channel", {"topic": "candles.*"}, "tr:bus:candles.*:live"),
    ("trader_halt", {}, "tr:trader:halt"),
    ("positions_snapshot", {"account": "paper"}, "tr:positions:paper"),
    ("user_sessions", {"user": "ana"}, "tr:sessions:ana"),
    ("latest_candle", {"symbol": "AAPL.US", "timeframe": "M5"}, "tr:candle:AAPL.US:M5"),
    ("latest_candles", {}, "tr:candle:"),
    (
        "candle_series",
        {"symbol": "AAPL", "timeframe": "D1", "generation": 7},
        "tr:series:AAPL:D1:g7",
    ),
    ("strategy_config", {"name": "fast"}, "tr:config:fast"),
    ("strategy_configs", {}, "tr:config:"),
    ("provider_response", {"digest": "00ff"}, "tr:response:00ff"),
    ("cache_fill_lock", {"key": "series:A:M5:v1"}, "tr:fill:series:A:M5:v1"),
    ("cache_stats", {}, "tr:cache:stats"),
    ("celery_queue", {"queue": "batch"}, "tr:batch"),
    ("celery_queue_step", {"queue": "batch", "step": 8}, "tr:batch:8"),
    ("kombu_binding", {"exchange": "interactive"}, "tr:_kombu.binding.interactive"),
    ("kombu_binding_permanent", {"exchange": "batch"}, "tr:_kombu.binding_permanent.batch"),
    ("kombu_binding_deadlines", {}, "tr:_kombu.binding_deadlines"),
    ("celery_unacked", {}, "tr:unacked"),
    ("celery_unacked_index", {}, "tr:unacked_index"),
    ("celery_unacked_mutex", {}, "tr:unacked_mutex"),
    ("celery_reply_queue", {"reply_id": "9f2c"}, "tr:9f2c.reply.celery.pidbox"),
    ("celery_pidbox_queue", {"node": "w1@host"}, "tr:w1@host.celery.pidbox"),
    ("celery_event_queue", {"receiver_id": "3a7b"}, "tr:celeryev.3a7b"),
]


@pytest.mark.parametrize(("builder", "args", "key"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_builder_makes_the_documented_key(builder: str, args: dict[str, Any], key: str) -> None:
    assert getattr(Keys("tr:"), builder)(**args) == key
    other = getattr(Keys("d2:"), builder)(**args)
    assert other == "d2:" + key.removeprefix("tr:")  # another deployment, another key


def test_every_builder_is_in_the_schema_and_checked_here() -> None:
    public = {
        name
        for name, _ in inspect.getmembers(Keys, inspect.isfunction)
        if not name.startswith("_") and name != "everything"
    }
    assert public == {s.builder for s in SCHEMA} == {e[0] for e in EXPECTED}


def test_every_key_belongs_to_exactly_its_own_builder() -> None:
    for builder, _, key in EXPECTED:
        spec = next(s for s in SCHEMA if s.builder == builder)
        expected = [] if spec.type == "prefix" else [builder]  # prefixes are not keys
        assert owners(key, "tr:") == expected, key
    assert owners("tr:job:ab12:hb:x", "tr:") == []  # no pattern swallows a longer key
    assert owners("tr:urgent", "tr:") == []  # a queue that is not ours
    assert owners("other:job:ab12", "tr:") == []  # another deployment's


def test_prefix_keys_cover_exactly_their_builders_keys() -> None:
    keys = Keys("tr:")
    assert keys.latest_candle("A", "M5").startswith(keys.latest_candles())
    assert keys.strategy_config("x").startswith(keys.strategy_configs())
    assert keys.ratelimit_quota("e", "day").startswith(keys.ratelimit("e") + ":")
    assert not keys.candle_series("A", "M5", 1).startswith(keys.latest_candles())
    assert keys.everything() == "tr:*"
    # The fill lock of a (prefixed) cache key carries the prefix once.
    assert keys.cache_fill_lock(keys.candle_series("A", "M5", 1)) == "tr:fill:series:A:M5:g1"


def test_ttls_come_from_one_place_each() -> None:
    for spec in SCHEMA:
        assert sum(bool(x) for x in (spec.ttl, spec.ttl_setting, spec.ttl_text)) <= 1, spec
        assert spec.ttl is None or spec.ttl > 0
        if spec.ttl_setting:
            assert isinstance(Settings.model_fields[spec.ttl_setting].default, int)
        assert spec.role in ("durable", "cache") and spec.doc
    # No copy of a setting's default is left in keys.py (it would drift from config.py).
    assert not hasattr(keys_module, "JOB_HEARTBEAT_TTL")
    assert not hasattr(keys_module, "CANDLE_SERIES_TTL")
    assert keys_module.JOB_STATE_TTL == keys_module.JOB_CANCEL_TTL == 7 * 86400


def test_markdown_table_shows_each_ttl_where_it_comes_from() -> None:
    table = keys_module.markdown_table()
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:]}
    assert set(rows) == {s.builder for s in SCHEMA}
    assert "| `TRADERUNNER_JOB_HEARTBEAT_TTL` (default 15) |" in rows["job_heartbeat"]
    assert "| `TRADERUNNER_CACHE_SERIES_TTL` (default 3600) |" in rows["candle_series"]
    assert "| 604800 |" in rows["job"]
    assert "| none |" in rows["jobs_events"]
