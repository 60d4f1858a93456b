"""Columnar candles: the one shape every layer passes around.

``CandleArrays`` holds one symbol's bars as parallel NumPy arrays, oldest first. Timestamps are
the bar's *open* time as int64 nanoseconds since the Unix epoch, UTC (the same unit as a pandas
``DatetimeIndex``), strictly increasing. Prices and volume are float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from traderunner.domain.timeframe import Timeframe
from traderunner.errors import DataFileError, DataRangeError

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar: open time ``ts_ns`` (int nanoseconds since the epoch, UTC) and OHLCV.

    The value the latest-candle cache hands out; ``CandleArrays.last()`` builds one.
    """

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str = ""
    timeframe: Timeframe | None = None
    source: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class CandleArrays:
    """One symbol's bars as columns. Arrays are treated as read-only; never mutate them.

    ``source`` labels where the data came from (``synthetic``, ``csv``, ``eodhd`` ...) so that
    synthetic data is always shown as such.
    """

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    symbol: str = ""
    timeframe: Timeframe | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: The UTC DatetimeIndex these times came from (``from_frame``), reused by :attr:`index`
    #: so a frame's index is converted once.
    source_index: pd.DatetimeIndex | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in COLUMNS:
            if len(getattr(self, name)) != n:
                raise DataFileError(
                    f"column {name!r} has {len(getattr(self, name))} values but ts has {n}"
                )

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def index(self) -> pd.DatetimeIndex:
        """The timestamps as a UTC pandas DatetimeIndex (nanoseconds)."""
        if self.source_index is not None:
            return self.source_index
        import pandas as pd

        stamps = np.asarray(self.ts, dtype=np.int64).view("datetime64[ns]")
        return pd.DatetimeIndex(stamps, dtype="datetime64[ns, UTC]", copy=False)

    def slice(self, start: int, stop: int) -> CandleArrays:
        """Bars ``start`` (inclusive) to ``stop`` (exclusive) by position."""
        return CandleArrays(
            ts=self.ts[start:stop],
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
            symbol=self.symbol,
            timeframe=self.timeframe,
            source=self.source,
            meta=dict(self.meta),
        )

    def last(self) -> Candle:
        """The newest bar as a :class:`Candle`; DataRangeError when there are no bars."""
        if len(self.ts) == 0:
            raise DataRangeError(
                f"no candles for {self.symbol or 'this series'}: load or import some first"
            )
        return Candle(
            ts_ns=int(self.ts[-1]),
            open=float(self.open[-1]),
            high=float(self.high[-1]),
            low=float(self.low[-1]),
            close=float(self.close[-1]),
            volume=float(self.volume[-1]),
            symbol=self.symbol,
            timeframe=self.timeframe,
            source=self.source,
        )

    def between(self, start_ns: int | None, end_ns: int | None) -> CandleArrays:
        """Bars whose timestamp is within ``[start_ns, end_ns]`` (either bound may be None)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts, start_ns, side="left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.ts, end_ns, side="right"))
        return self.slice(lo, hi)

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with a UTC DatetimeIndex and lower-case OHLCV columns."""
        import pandas as pd

        return pd.DataFrame({name: getattr(self, name) for name in COLUMNS}, index=self.index)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        symbol: str = "",
        timeframe: Timeframe | None = None,
        source: str = "",
    ) -> CandleArrays:
        """Build from a DataFrame with a DatetimeIndex and open/high/low/close/volume columns.

        Column names are matched in any letter case; ``volume`` may be missing (zeros).
        A naive index is taken as UTC. The index must be strictly increasing.
        """
        import pandas as pd

        if not isinstance(frame.index, pd.DatetimeIndex):
            raise DataRangeError(
                "candles need a DatetimeIndex: set the time column as index, e.g. "
                "df.set_index(pd.to_datetime(df['time']))"
            )
        lower = {str(c).lower(): c for c in frame.columns}
        missing = [c for c in ("open", "high", "low", "close") if c not in lower]
        if missing:
            raise DataRangeError(
                f"candles are missing column(s) {', '.join(missing)}; "
                f"found {', '.join(map(str, frame.columns)) or 'none'}"
            )
        index = frame.index
        if index.tz is None:
            index = index.tz_localize("UTC")
        elif str(index.tz) != "UTC":
            index = index.tz_convert("UTC")
        # pandas 3 may hold microseconds; our unit is always nanoseconds.
        if index.unit != "ns":
            index = index.as_unit("ns")
        # A view of the index's own int64 nanoseconds (no copy: these arrays are read-only).
        ts = np.asarray(index.asi8, dtype=np.int64)
        if len(ts) > 1 and not bool((ts[1:] > ts[:-1]).all()):
            raise DataRangeError(
                "candle timestamps must be strictly increasing: sort the frame and drop "
                "duplicate timestamps"
            )

        def col(name: str) -> FloatArray:
            return np.ascontiguousarray(frame[lower[name]].to_numpy(dtype=np.float64))

        volume = col("volume") if "volume" in lower else np.zeros(len(ts), dtype=np.float64)
        return cls(
            ts=ts,
            open=col("open"),
            high=col("high"),
            low=col("low"),
            close=col("close"),
            volume=volume,
            symbol=symbol,
            timeframe=timeframe,
            source=source,
            source_index=index,
        )
