"""Binary values of the market cache: a latest candle, a whole series, a provider response.

Formats (little-endian, versioned by a 4-byte magic so a foreign or truncated value is caught):

``candle``  ``b"TRC\\x01"`` + ``<q5d`` (ts_ns, open, high, low, close, volume) + source (UTF-8);
            ``b"TRC\\x00"`` alone is a tombstone: the store has no such series.
``series``  ``b"TRS\\x02"`` + 4 zero bytes + ``<Q`` (the store's series generation), then one
            48-byte row per bar, oldest first: ``<q5d`` (ts_ns, open, high, low, close,
            volume). No JSON, no pickle; decoding is one strided copy per column. Rows, not
            columns, so that bars appended to the series are appended to the value (``APPEND``)
            and a reader that holds the first ``n`` bars reads only the rest (``GETRANGE``).
            The bar count is the length; the source label and version are the store's series
            row's, which every reader has in hand anyway.
``response``  ``b"z"`` + zlib(body) or ``b"r"`` + body (bodies under 1 KiB are not worth it).

Decoders raise :class:`CorruptValueError` for anything that is not exactly such a value; the cache
then treats the key as missing and rewrites it from the store.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

from traderunner.domain.candles import COLUMNS, Candle, CandleArrays
from traderunner.domain.timeframe import Timeframe

_CANDLE = b"TRC\x01"
TOMBSTONE = b"TRC\x00"
_CANDLE_BODY = struct.Struct("<q5d")
_SERIES = b"TRS\x02"
_SERIES_HEAD = struct.Struct("<4s4xQ")
SERIES_HEAD_BYTES = _SERIES_HEAD.size
BAR_BYTES = 8 * (1 + len(COLUMNS))
_ROW = np.dtype([("ts", "<i8"), *((name, "<f8") for name in COLUMNS)])
_COMPRESS_FROM = 1024


class CorruptValueError(Exception):
    """A cached value that is not what its key promises (garbage, truncated, other format)."""


def encode_candle(candle: Candle | None) -> bytes:
    """The cached form of a latest candle; None (no such series) becomes the tombstone."""
    if candle is None:
        return TOMBSTONE
    body = _CANDLE_BODY.pack(
        candle.ts_ns, candle.open, candle.high, candle.low, candle.close, candle.volume
    )
    return _CANDLE + body + candle.source.encode()


def decode_candle(raw: bytes, symbol: str, timeframe: Timeframe) -> Candle | None:
    """Inverse of :func:`encode_candle` (the key supplies symbol and timeframe)."""
    if raw == TOMBSTONE:
        return None
    if raw[:4] != _CANDLE or len(raw) < 4 + _CANDLE_BODY.size:
        raise CorruptValueError(f"not a cached candle ({len(raw)} bytes)")
    ts, open_, high, low, close, volume = _CANDLE_BODY.unpack_from(raw, 4)
    try:
        source = raw[4 + _CANDLE_BODY.size :].decode()
    except UnicodeDecodeError:
        raise CorruptValueError("cached candle has a source label that is not UTF-8") from None
    return Candle(ts, open_, high, low, close, volume, symbol, timeframe, source)


def encode_series(candles: CandleArrays, generation: int) -> bytes:
    """One value holding all of ``candles`` (see the module docstring for the layout)."""
    return _SERIES_HEAD.pack(_SERIES, int(generation)) + encode_rows(candles)


def encode_rows(candles: CandleArrays) -> bytes:
    """The rows of ``candles`` alone: what is appended to a cached series."""
    rows = np.empty(len(candles), dtype=_ROW)
    rows["ts"] = candles.ts
    for name in COLUMNS:
        rows[name] = getattr(candles, name)
    return rows.tobytes()


def series_length(bars: int) -> int:
    """The length in bytes of a cached series of ``bars`` bars."""
    return SERIES_HEAD_BYTES + BAR_BYTES * bars


def row_offset(bar: int) -> int:
    """Where bar number ``bar`` (0-based) starts in a cached series."""
    return SERIES_HEAD_BYTES + BAR_BYTES * bar


def series_generation(raw: bytes) -> int:
    """The generation a cached series was written for; CorruptValueError if it is none."""
    if len(raw) < SERIES_HEAD_BYTES or (len(raw) - SERIES_HEAD_BYTES) % BAR_BYTES:
        raise CorruptValueError(f"not a cached series ({len(raw)} bytes)")
    magic, generation = _SERIES_HEAD.unpack_from(raw, 0)
    if magic != _SERIES:
        raise CorruptValueError("not a cached series (wrong magic)")
    return int(generation)


def decode_series(raw: bytes, generation: int) -> dict[str, np.ndarray]:
    """The columns (``ts`` and OHLCV) of a cached series of ``generation``: fresh, writable,
    aligned arrays, like what the store returns (numba wants both).

    CorruptValueError for anything else, a series of another generation included.
    """
    found = series_generation(raw)
    if found != int(generation):
        raise CorruptValueError(f"cached series is of generation {found}, not {generation}")
    return decode_rows(memoryview(raw)[SERIES_HEAD_BYTES:])


def decode_rows(raw: bytes | memoryview) -> dict[str, np.ndarray]:
    """The columns of bare rows (a ``GETRANGE`` of a cached series)."""
    if len(raw) % BAR_BYTES:
        raise CorruptValueError(f"{len(raw)} bytes are not whole cached bars")
    rows = np.frombuffer(raw, dtype=_ROW)
    return {name: np.ascontiguousarray(rows[name]) for name in ("ts", *COLUMNS)}


def encode_config(config: dict[str, Any]) -> bytes:
    """A strategy config as compact JSON (ValueError/TypeError when it is not JSON-able)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def decode_config(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptValueError("cached strategy config is not JSON") from None
    if not isinstance(value, dict):
        raise CorruptValueError("cached strategy config is not a JSON object")
    return value


def encode_response(body: bytes) -> bytes:
    if len(body) < _COMPRESS_FROM:
        return b"r" + body
    return b"z" + zlib.compress(body, 1)


def decode_response(raw: bytes) -> bytes:
    kind, payload = raw[:1], raw[1:]
    if kind == b"r":
        return payload
    if kind == b"z":
        try:
            return zlib.decompress(payload)
        except zlib.error:
            raise CorruptValueError("cached provider response does not decompress") from None
    raise CorruptValueError("not a cached provider response")
