"""The SQL store, the system of record: candles, series versions, saved runs and jobs.

::

    from traderunner.store import Store
    store = Store.connect("sqlite:///traderunner.db")     # creates missing tables
    store.candles.upsert(candles)                          # -> SeriesWrite: new/append/rewrite
    store.candles.load("AAPL", Timeframe.M5, start_ns, end_ns)   # -> CandleArrays
    store.candles.list_series()                            # -> [SeriesInfo, ...]
    store.runs.save_backtest(result, owner="ana", timeframe="M5", prices=candles)  # -> run id
    store.runs.list(strategy="sma_cross", symbol="AAPL")  # -> Page of RunRecord, newest first
    store.runs.frames(store.runs.resolve("a0d6"))          # -> {"equity": DataFrame, ...}
    store.close()

SQLAlchemy 2 Core only (no ORM). The pure layers (domain, strategies, engine) never import it.
"""

from traderunner.store.candles import CandleRepository
from traderunner.store.runs import RunRepository
from traderunner.store.series import SeriesInfo, SeriesWrite
from traderunner.store.store import Store, mask_url, normalize_url

__all__ = [
    "CandleRepository",
    "RunRepository",
    "SeriesInfo",
    "SeriesWrite",
    "Store",
    "mask_url",
    "normalize_url",
]
