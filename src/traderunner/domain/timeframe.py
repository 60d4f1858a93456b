"""Bar timeframes."""

from __future__ import annotations

from enum import StrEnum

from traderunner.errors import DataRangeError

_SECONDS = {"M1": 60, "M5": 300, "M15": 900, "M30": 1800, "H1": 3600, "H4": 14400, "D1": 86400}
_ALIASES = {
    "1m": "M1",
    "1min": "M1",
    "5m": "M5",
    "5min": "M5",
    "15m": "M15",
    "15min": "M15",
    "30m": "M30",
    "30min": "M30",
    "1h": "H1",
    "60m": "H1",
    "4h": "H4",
    "1d": "D1",
    "d": "D1",
    "daily": "D1",
    "eod": "D1",
}


class Timeframe(StrEnum):
    """The length of one bar. The value is the canonical name (``M5``, ``H1``, ``D1``)."""

    M1 = "M1"
    M5 = "M5"
    M15 = "M15"
    M30 = "M30"
    H1 = "H1"
    H4 = "H4"
    D1 = "D1"

    @property
    def seconds(self) -> int:
        """Bar length in seconds."""
        return _SECONDS[self.value]

    @property
    def is_intraday(self) -> bool:
        return self is not Timeframe.D1

    @classmethod
    def parse(cls, text: str | Timeframe) -> Timeframe:
        """Accept ``M5``, ``m5``, ``5m``, ``5min``, ``1h``, ``D1``, ``daily`` ...

        Raises DataRangeError naming the accepted values.
        """
        if isinstance(text, Timeframe):
            return text
        raw = str(text).strip()
        key = raw.upper()
        if key in _SECONDS:
            return cls(key)
        alias = _ALIASES.get(raw.lower())
        if alias:
            return cls(alias)
        names = ", ".join(_SECONDS)
        raise DataRangeError(f"unknown timeframe {raw!r}: use one of {names}")
