"""How the store keeps a run's large parts: one Parquet blob per table (binary, compressed).

An equity curve, a price curve, a trade list or a sweep's rows is a table of columns. It is
written as a Parquet file in memory (Apache Arrow's, through ``pyarrow``) and stored as bytes:

* float columns use ``BYTE_STREAM_SPLIT`` and integer and time columns ``DELTA_BINARY_PACKED``
  (a regular bar clock costs almost nothing), strings a dictionary; then zstd;
* the schema travels with the data (names, types, time zones, categoricals), and reading it
  back gives exactly the values written: no pickle, no float text round trip;
* what is queried (strategy, symbols, owner, metrics ...) stays in JSON columns beside it.

``pyarrow`` and ``pandas`` are imported when a table is encoded or decoded, not with the store,
so a process that only lists runs or jobs (the dashboard's job client) does not load them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMAT = "parquet"
_ZSTD_LEVEL = 9


def to_arrow(data: pd.DataFrame | Sequence[Mapping[str, Any]] | pa.Table) -> pa.Table:
    """A DataFrame (its index dropped), a list of JSON-like records, or a table, as a table."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False, nthreads=1)
    return pa.Table.from_pylist([dict(row) for row in data])


def encode(data: pd.DataFrame | Sequence[Mapping[str, Any]] | pa.Table) -> tuple[bytes, int]:
    """``(parquet bytes, rows)`` of ``data`` (see the module docstring for the encodings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = to_arrow(data)
    dictionary: list[str] = []
    encodings: dict[str, str] = {}
    for f in table.schema:
        kind = f.type
        if pa.types.is_floating(kind):
            encodings[f.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
            encodings[f.name] = "DELTA_BINARY_PACKED"
        else:
            dictionary.append(f.name)
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=_ZSTD_LEVEL,
        use_dictionary=dictionary,
        column_encoding=encodings or None,
    )
    return sink.getvalue(), table.num_rows


def decode(data: bytes) -> pa.Table:
    """The table :func:`encode` wrote."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # No Arrow thread pools: a run's tables are small, and a process whose pool threads are
    # still alive at exit can abort in Arrow's C++ teardown ("terminate called without an
    # active exception", SIGABRT after the command's work was done; apache/arrow#34314). Seen
    # here in `backtest --submit --json`. pq.read_table starts an I/O pool thread even with
    # use_threads=False; ParquetFile on a buffer does not.
    return pq.ParquetFile(pa.BufferReader(bytes(data)), pre_buffer=False).read(use_threads=False)


def decode_frame(data: bytes) -> pd.DataFrame:
    """The table as a DataFrame (times as UTC datetimes, categoricals as written)."""
    return decode(data).to_pandas(use_threads=False)


def decode_records(data: bytes) -> list[dict[str, Any]]:
    """The table as a list of records (JSON-like dicts, nulls as None)."""
    return list(decode(data).to_pylist())
