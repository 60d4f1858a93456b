"""A backtest period: an optional UTC start and end, parsed from what a user types.

Accepted text for either bound: a date ``2024-01-02`` or an ISO-8601 datetime
``2024-01-02T14:30``, ``2024-01-02 14:30:00``, ``2024-01-02T14:30:00Z`` or with an offset
``2024-01-02T09:30-05:00``. A naive datetime is taken as UTC. A bare *end* date is inclusive:
it means the end of that day (``23:59:59.999999999`` UTC), so ``--from 2024-01-02 --to
2024-01-02`` covers the whole of 2 January. Empty text or ``None`` means "unbounded".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from traderunner.errors import DataRangeError

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NS_PER_DAY = 86_400_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end]``, both inclusive and UTC-aware; ``None`` means unbounded on that side.

    ``end_ns`` of a period parsed from a bare end date is the last nanosecond of that day,
    which a ``datetime`` (microsecond resolution) cannot hold; ``end`` is then the start of the
    next day minus one microsecond and ``end_ns`` is exact.
    """

    start: datetime | None = None
    end: datetime | None = None
    # Set when ``end`` came from a bare date: the end is the whole of that day to the last ns.
    end_is_whole_day: bool = False

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise DataRangeError(
                    f"period {name} {value.isoformat()} has no time zone: pass a UTC datetime"
                )
            if value is not None:
                object.__setattr__(self, name, value.astimezone(UTC))
        if self.start is not None and self.end is not None and self.start > self.end:
            raise DataRangeError(
                f"period start {self.start.isoformat()} is after its end "
                f"{self.end.isoformat()}: swap --from and --to"
            )

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> Period:
        """Parse user text for both bounds; bad text or start after end -> DataRangeError."""
        start_dt = _parse_bound(start, "start", whole_day_end=False)
        end_dt = _parse_bound(end, "end", whole_day_end=True)
        whole_day = end is not None and bool(_DATE_ONLY.match(end.strip()))
        return cls(start=start_dt, end=end_dt, end_is_whole_day=whole_day)

    @property
    def start_ns(self) -> int | None:
        """Start as int64 nanoseconds since the epoch (UTC), or None."""
        return None if self.start is None else _to_ns(self.start)

    @property
    def end_ns(self) -> int | None:
        """End (inclusive) as int64 nanoseconds since the epoch (UTC), or None."""
        if self.end is None:
            return None
        if self.end_is_whole_day:
            day_start = datetime.combine(self.end.date(), datetime.min.time(), tzinfo=UTC)
            return _to_ns(day_start) + _NS_PER_DAY - 1
        return _to_ns(self.end)

    def describe(self) -> str:
        """Short human text, e.g. ``2024-01-02 .. 2024-03-01`` or ``all data``."""
        if self.start is None and self.end is None:
            return "all data"
        lo = "start" if self.start is None else self.start.isoformat()
        hi = "end" if self.end is None else self.end.isoformat()
        return f"{lo} .. {hi}"


def _to_ns(value: datetime) -> int:
    delta = value - _EPOCH
    # Integer arithmetic: float seconds would lose nanosecond (even microsecond) precision.
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _parse_bound(text: str | None, which: str, *, whole_day_end: bool) -> datetime | None:
    if text is None or not text.strip():
        return None
    raw = text.strip()
    flag = "--from" if which == "start" else "--to"
    if _DATE_ONLY.match(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise DataRangeError(
                f"{flag} {raw!r} is not a real date: use YYYY-MM-DD, e.g. 2024-01-02"
            ) from None
        begin = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        if whole_day_end:
            return begin + timedelta(days=1) - timedelta(microseconds=1)
        return begin
    candidate = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise DataRangeError(
            f"{flag} {raw!r} is not a date: use YYYY-MM-DD or an ISO datetime such as "
            "2024-01-02T14:30 (UTC unless an offset is given)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
