"""The one JSON-safe converter: every result, job payload and ``--json`` output goes through it.

:func:`json_safe` turns a value into plain JSON types (``dict``/``list``/``str``/``int``/
``float``/``bool``/``None``):

* NaN and infinities become ``None`` (JSON has neither);
* NumPy scalars and arrays become Python numbers and lists;
* datetimes become ISO-8601 strings in UTC (a naive datetime is taken as UTC, as everything
  traderunner writes is), dates become ``YYYY-MM-DD``; ``NaT`` becomes ``None``;
* Enums become their values, mapping keys become strings, tuples become lists, paths strings;
* anything else raises ``TypeError`` naming where it is (``summary.options.callback is a
  object``), so a caller can say which field it cannot save instead of writing ``repr()``.

It lives in ``domain`` (NumPy only) so that the engine, the store, the job runner and the CLI
share it without the store or the job client importing the engine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import numpy as np


def json_safe(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON types (see the module docstring); TypeError names what is not."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return json_safe(value.value, where)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        return str(np.datetime_as_string(value, timezone="UTC"))
    if isinstance(value, np.generic):
        return json_safe(value.item(), where)
    if isinstance(value, np.ndarray):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, datetime):
        if type(value).__name__ == "NaTType":  # pandas' NaT is a datetime that is no time
            return None
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where} is a {type(value).__name__}, which JSON cannot hold")
