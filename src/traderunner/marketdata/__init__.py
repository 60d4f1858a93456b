"""Market data: providers (synthetic now; EODHD later), candle files, and ingestion.

::

    from traderunner.marketdata import (synthetic_candles, read_candle_file, import_file,
                                        load_demo, load_candles, DEMO_SYMBOLS)

Synthetic data is always labelled ``source="synthetic"``, and that label travels with it into
the store and everything that shows it.
"""

from traderunner.marketdata.files import read_candle_file
from traderunner.marketdata.ingest import (
    DEMO_ANCHOR,
    DEMO_SYMBOLS,
    demo_range,
    import_file,
    load_candles,
    load_demo,
)
from traderunner.marketdata.providers import Provider, SyntheticProvider, synthetic_candles

__all__ = [
    "DEMO_ANCHOR",
    "DEMO_SYMBOLS",
    "Provider",
    "SyntheticProvider",
    "demo_range",
    "import_file",
    "load_candles",
    "load_demo",
    "read_candle_file",
    "synthetic_candles",
]
