"""The market-data cache: latest candles, candle series, strategy configs, provider responses.

::

    from traderunner.cache import MarketCache, RedisResponseCache, CacheStats

``MarketCache`` (market.py) is the read-through cache in front of the store, with stampede
protection and an in-process tier kept coherent by Redis invalidations (local.py);
``RedisResponseCache`` (responses.py) keeps raw provider responses; ``read_stats`` reads the
counters every process adds to Redis (stats.py) without building a cache. Values are binary
(codec.py): no JSON for candles, no pickle anywhere. All of it lives in the *cache* Redis,
and all of it can be rebuilt from the store.
"""

from traderunner.cache.market import MarketCache
from traderunner.cache.responses import RedisResponseCache
from traderunner.cache.stats import CacheStats, read_stats

__all__ = ["CacheStats", "MarketCache", "RedisResponseCache", "read_stats"]
