"""Binary values of the market cache: a latest candle, a whole series, a provider response.

Formats (little-endian, versioned by a 4-byte magic so a foreign or truncated value is caught):

``candle``  ``b"TRC\\x01"`` + ``<q5d`` (ts_ns, open, high, low, close, volume) + source (UTF-8);
            ``b"TRC\\x00"`` alone is a tombstone: the store has no such series.
``series``  ``b"TRS\\x01"`` + ``<QQH`` (bars, store version, source length) + source (UTF-8),
            zero-padded to a multiple of 8 bytes, then the six columns' raw bytes one after the
            other: ts (int64), open, high, low, close, volume (float64). 48 bytes a bar, no JSON,
            no pickle; decoding is one copy per column.
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
_SERIES = b"TRS\x01"
_SERIES_HEAD = struct.Struct("<4sQQH")
_BAR_BYTES = 8 * (1 + len(COLUMNS))
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


def encode_series(candles: CandleArrays, version: int) -> bytes:
    """One value holding all of ``candles`` (see the module docstring for the layout)."""
    source = candles.source.encode()
    head = _SERIES_HEAD.pack(_SERIES, len(candles), int(version), len(source)) + source
    head += b"\0" * (-len(head) % 8)
    parts = [head, np.ascontiguousarray(candles.ts, dtype="<i8").tobytes()]
    parts.extend(
        np.ascontiguousarray(getattr(candles, name), dtype="<f8").tobytes() for name in COLUMNS
    )
    return b"".join(parts)


def decode_series(raw: bytes, symbol: str, timeframe: Timeframe) -> CandleArrays:
    """Inverse of :func:`encode_series`; the arrays are fresh, writable copies."""
    if len(raw) < _SERIES_HEAD.size:
        raise CorruptValueError(f"not a cached series ({len(raw)} bytes)")
    magic, n, version, source_len = _SERIES_HEAD.unpack_from(raw, 0)
    if magic != _SERIES:
        raise CorruptValueError("not a cached series (wrong magic)")
    offset = _SERIES_HEAD.size + source_len
    offset += -offset % 8
    if len(raw) != offset + n * _BAR_BYTES:
        raise CorruptValueError(f"cached series is {len(raw)} bytes, its header promises {n} bars")
    try:
        source = raw[_SERIES_HEAD.size : _SERIES_HEAD.size + source_len].decode()
    except UnicodeDecodeError:
        raise CorruptValueError("cached series has a source label that is not UTF-8") from None
    columns: dict[str, Any] = {}
    for name, dtype in (("ts", "<i8"), *((c, "<f8") for c in COLUMNS)):
        # .copy(): writable and aligned, like what the store returns (numba wants both).
        columns[name] = np.frombuffer(raw, dtype=dtype, count=n, offset=offset).copy()
        offset += 8 * n
    return CandleArrays(
        **columns,
        symbol=symbol,
        timeframe=timeframe,
        source=source,
        meta={"version": int(version)},
    )


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
