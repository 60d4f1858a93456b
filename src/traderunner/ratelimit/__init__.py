"""The cluster-wide limiter for external APIs (EODHD's per-minute and per-day quotas).

One :class:`RateLimiter` per external API, built from settings with
:func:`limiter_from_settings`; every process and machine pointing at the same durable Redis
shares its quotas. See :mod:`traderunner.ratelimit.limiter` for the algorithm and its limits.
"""

from __future__ import annotations

from traderunner.ratelimit.limiter import (
    LimitUsage,
    Quota,
    QuotaError,
    RateLimiter,
    limiter_from_settings,
)

__all__ = ["LimitUsage", "Quota", "QuotaError", "RateLimiter", "limiter_from_settings"]
