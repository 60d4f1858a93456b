"""Query pieces the repositories share: JSON-array membership, id prefixes, pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from traderunner.errors import DataRangeError, UserInputError

#: The shortest id prefix accepted (as git, which asks for 4 hex digits).
MIN_PREFIX = 4
_CANDIDATES_SHOWN = 5


def json_array_contains(
    column: Any, value: str, dialect: str, path: str | None = None
) -> sa.ColumnElement[bool]:
    """``value`` is an element of the JSON array in ``column`` (or at key ``path`` of it)."""
    if dialect == "postgresql":
        doc = sa.cast(column, JSONB)
        target = doc[path] if path else doc
        return target.contains([value])
    if dialect == "sqlite":
        args = (column, f"$.{path}") if path else (column,)
        each = sa.func.json_each(*args).table_valued("value")
        return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == value))
    raise DataRangeError(f"filtering by symbol needs SQLite or PostgreSQL, not {dialect}")


def check_prefix(text: str, what: str, listing: str) -> str:
    """The stripped prefix; UserInputError when it is too short to name one thing."""
    prefix = str(text).strip()
    if len(prefix) < MIN_PREFIX:
        raise UserInputError(
            f"{what} id {text!r} is too short: give at least {MIN_PREFIX} of its characters "
            f"(see '{listing}')"
        )
    return prefix


def one_match(prefix: str, found: Sequence[str], what: str, listing: str) -> str:
    """The one id of ``found`` for ``prefix``; a clear one-line error for none or several.

    ``found`` is what the caller's query returned, limited to :data:`CANDIDATE_LIMIT` rows.
    """
    if prefix in found:
        return prefix
    if not found:
        raise DataRangeError(f"no {what} {prefix!r}: see '{listing}'")
    if len(found) == 1:
        return found[0]
    shown = ", ".join(found[:_CANDIDATES_SHOWN])
    more = " and more" if len(found) > _CANDIDATES_SHOWN else ""
    raise UserInputError(
        f"{what} id {prefix!r} is ambiguous: {shown}{more} start with it; give more characters"
    )


#: How many ids a prefix query asks for: enough to show the candidates and know there are more.
CANDIDATE_LIMIT = _CANDIDATES_SHOWN + 1
