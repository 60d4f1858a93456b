"""The SQL store, the system of record: candles, series versions and backtest results.

::

    from traderunner.store import Store
    store = Store.connect("sqlite:///traderunner.db")     # creates missing tables
    store.candles.upsert(candles)                          # -> SeriesWrite: new/append/rewrite
    store.candles.load("AAPL", Timeframe.M5, start_ns, end_ns)   # -> CandleArrays
    store.candles.list_series()                            # -> [SeriesInfo, ...]
    store.results.save(result.to_dict(curve=True), result_id=job_id)
    store.close()

SQLAlchemy 2 Core only (no ORM). The pure layers (domain, strategies, engine) never import it.
"""

from traderunner.store.candles import CandleRepository
from traderunner.store.results import ResultRepository
from traderunner.store.series import SeriesInfo, SeriesWrite
from traderunner.store.store import Store, mask_url, normalize_url

__all__ = [
    "CandleRepository",
    "ResultRepository",
    "SeriesInfo",
    "SeriesWrite",
    "Store",
    "mask_url",
    "normalize_url",
]
