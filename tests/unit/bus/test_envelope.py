"""The envelope's wire form, its typed decode errors, ids, topics and options (no Redis)."""

from __future__ import annotations

import json
import math
import threading
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderunner.bus import BusOptions, Envelope, new_id, stable_id
from traderunner.bus.topics import candles, check_topic
from traderunner.config import load_settings
from traderunner.errors import MessageError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    payload=st.dictionaries(st.text(), json_values, max_size=6),
    kind=st.text(min_size=1, max_size=20),
    v=st.integers(min_value=1, max_value=1000),
)
def test_encode_then_decode_gives_the_same_envelope(
    payload: dict[str, Any], kind: str, v: int
) -> None:
    envelope = Envelope.new("signals", kind, payload, v=v)
    wire = envelope.encode()
    assert Envelope.decode(wire) == envelope
    assert Envelope.decode(wire.encode()) == envelope  # bytes as a byte client gives them
    assert set(json.loads(wire)) == {"topic", "type", "v", "id", "ts_ns", "payload"}


def test_wire_form_is_compact_strict_json() -> None:
    envelope = Envelope("signals", "signal", 1, "id-1", 5, {"symbol": "ÄÖ", "qty": 2.5})
    assert envelope.encode() == (
        '{"topic":"signals","type":"signal","v":1,"id":"id-1","ts_ns":5,'
        '"payload":{"symbol":"ÄÖ","qty":2.5}}'
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1, 2}, object(), b"raw"])
def test_encoding_refuses_what_strict_json_cannot_hold(bad: Any) -> None:
    with pytest.raises(MessageError, match="cannot be sent as JSON") as info:
        Envelope.new("signals", "signal", {"x": bad}).encode()
    assert info.value.reason == "bad_json"
    assert "\n" not in str(info.value)


def _wire(**changes: Any) -> str:
    data = {"topic": "signals", "type": "signal", "v": 1, "id": "a", "ts_ns": 0, "payload": {}}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        ("", "bad_json", "not JSON"),
        ("{", "bad_json", "not JSON"),
        (b"\xc3\x28", "bad_json", "not JSON"),
        ("NaN", "bad_envelope", "a JSON float"),
        ('"text"', "bad_envelope", "a JSON str"),
        (_wire(payload=...), "bad_envelope", "lacks payload"),
        (_wire(topic=""), "bad_envelope", "topic must be"),
        (_wire(type=3), "bad_envelope", "type must be"),
        (_wire(v=0), "bad_envelope", "v must be an integer >= 1"),
        (_wire(v=True), "bad_envelope", "v must be an integer >= 1"),
        (_wire(v=1.0), "bad_envelope", "v must be an integer >= 1"),
        (_wire(id=""), "bad_envelope", "id must be"),
        (_wire(id="x" * 129), "bad_envelope", "id must be"),
        (_wire(ts_ns=-1), "bad_envelope", "ts_ns must be"),
        (_wire(ts_ns="1"), "bad_envelope", "ts_ns must be"),
        (_wire(payload="{}"), "bad_envelope", "payload must be an object"),
    ],
)
def test_decoding_errors_are_typed_with_their_reason(
    raw: str | bytes, reason: str, words: str
) -> None:
    with pytest.raises(MessageError) as info:
        Envelope.decode(raw)
    assert info.value.reason == reason
    assert words in str(info.value)


def test_a_reader_refuses_other_topics_types_and_versions() -> None:
    wire = Envelope("signals", "signal", 2, "a", 0, {}).encode()
    accept = {"signal": {1}, "candle": {1}}
    for kwargs, reason in [
        ({"topic": "candles.M5"}, "wrong_topic"),
        ({"accept": {"candle": {1}}}, "unknown_type"),
        ({"accept": accept}, "wrong_version"),
    ]:
        with pytest.raises(MessageError) as info:
            Envelope.decode(wire, **kwargs)  # type: ignore[arg-type]
        assert info.value.reason == reason
    assert Envelope.decode(wire, topic="signals", accept={"signal": {1, 2}}).v == 2


def test_new_ids_are_uuid7_unique_and_increasing_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for out in made for i in out]
    assert len(set(everything)) == len(everything)
    for out in made:
        assert out == sorted(out)  # each thread saw them increase (string order = time order)
    parsed = uuid.UUID(everything[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_stable_ids_are_deterministic_and_distinct() -> None:
    a = stable_id("sma_cross", "AAPL", "M5", 1_700_000_000)
    assert a == stable_id("sma_cross", "AAPL", "M5", 1_700_000_000)
    assert a != stable_id("sma_cross", "AAPL", "M5", 1_700_000_300)
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert uuid.UUID(a).version == 8


def test_topics() -> None:
    assert candles("5m") == "candles.M5" and candles("D1") == "candles.D1"
    assert check_topic("signals") == "signals"
    for bad in ("", "a:b", "candles.*", " x", "é"):
        with pytest.raises(ValueError, match="invalid bus topic"):
            check_topic(bad)


def test_options_come_from_settings_and_are_checked(tmp_path: Any) -> None:
    settings = load_settings(
        data_dir=tmp_path, bus_stream_maxlen=5000, bus_claim_idle=12.5, bus_max_deliveries=9
    )
    options = BusOptions.from_settings(settings, block=0.5)
    assert (options.stream_maxlen, options.claim_idle, options.max_deliveries) == (5000, 12.5, 9)
    assert (options.claim_idle_ms, options.block_ms) == (12500, 500)
    with pytest.raises(ValueError, match="claim_idle must be > 0"):
        BusOptions(claim_idle=0)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        BusOptions(batch=0)
